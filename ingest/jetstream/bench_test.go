package jetstream

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"testing"
)

// BenchmarkJetStreamIntake measures the intake alone (no decoding or
// scoring): pull, read the whole film (inline, or fetched from the object
// store into the spool), acknowledge with confirmation. Backlog published
// before the timer starts.
func BenchmarkJetStreamIntake(b *testing.B) {
	for _, c := range []struct {
		name   string
		size   int
		object bool
	}{{"inline-512KiB", 512 << 10, false}, {"object-8MiB", 8 << 20, true}} {
		b.Run(c.name, func(b *testing.B) {
			h := openTestIntake(b, 16, 5)
			film := make([]byte, c.size)
			for i := range film {
				film[i] = byte(i)
			}
			payload := film
			if c.object {
				sum := sha256.Sum256(film)
				name := hex.EncodeToString(sum[:])
				obs, err := h.js.ObjectStore(h.ctx, "T_FILMS")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := obs.PutBytes(h.ctx, name, film); err != nil {
					b.Fatal(err)
				}
				payload, _ = json.Marshal(ObjectRef{Schema: ObjectRefSchema, Bucket: "T_FILMS", Name: name, SHA256: name})
			}
			for range b.N {
				h.publish(payload, nil)
			}
			b.SetBytes(int64(c.size))
			b.ResetTimer()
			for range b.N {
				m := h.next()
				rc, _, err := m.Open()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				if err := m.Ack(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
