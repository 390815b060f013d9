package bus_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// The embedded store on a disk that is nearly full at start and then fills
// up from another writer: JetStream refuses messages cleanly (an error
// StoreFull recognises, never a failed write), keeps every message it
// acknowledged, and takes messages again as soon as space is freed, with
// no restart. Without the guard, nats-server keeps the limit it measured
// at start (publishing fails for good after space is freed) and a write
// that hits ENOSPC breaks the stream until a restart.
func TestStoreGuardRefusesCleanlyOnAFullDiskAndRecovers(t *testing.T) {
	testenv.Slow(t)
	dir := testenv.Tmpfs(t, "16m")
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 12<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	storeDir := filepath.Join(dir, "nats")
	s, err := bus.StartEmbedded(bus.EmbeddedOptions{Listen: "127.0.0.1:-1", StoreDir: storeDir, SyncAlways: true}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	g := bus.NewStoreGuard(s, storeDir, 0, 512<<10)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("x"), 200<<10)
	stored := 0
	// publish until the store refuses; every refusal must be a clean one.
	fill := func(max int) (ok int) {
		t.Helper()
		for range max {
			if _, err := g.Check(); err != nil {
				t.Fatal(err)
			}
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := js.Publish(c, "s.x", msg)
			cancel()
			if err != nil {
				if !bus.StoreFull(err) {
					t.Fatalf("after %d messages: %v, want a refusal StoreFull recognises", ok, err)
				}
				return ok
			}
			ok++
			stored++
		}
		return ok
	}
	if n := fill(40); n == 0 || n >= 40 {
		t.Fatalf("%d messages stored on a disk with about 4 MiB free, want some and then a refusal", n)
	}
	if st := g.Last(); !st.Full {
		t.Errorf("guard state %+v after a refusal, want Full", st)
	}
	// Space is freed: more than the whole disk had free at start fits now.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if n := fill(30); n < 30 {
		t.Fatalf("only %d messages stored after 12 MiB were freed", n)
	}
	if st := g.Last(); st.Full {
		t.Errorf("guard state %+v with space, want not Full", st)
	}
	// Another writer fills the disk while the store is in use.
	var st jetstream.Stream
	if st, err = js.Stream(ctx, "S"); err != nil {
		t.Fatal(err)
	}
	free := g.Last().Free
	if err := os.WriteFile(filler, make([]byte, free-(1<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := fill(40); n >= 40 {
		t.Fatalf("%d messages stored after the disk filled up, want a refusal", n)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if n := fill(3); n != 3 {
		t.Fatalf("%d of 3 messages stored after space was freed again", n)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(info.State.Msgs) != stored {
		t.Fatalf("stream holds %d messages, %d were acknowledged", info.State.Msgs, stored)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil || !bytes.Equal(m.Data, msg) {
			t.Fatalf("message %d: %v (%d bytes)", seq, err, len(m.Data))
		}
	}
}

func TestStoreFullRecognisesOnlyStorageRefusals(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 400, ErrorCode: 10002, Description: "resource limits exceeded for account"}, true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}, true},
		{&jetstream.APIError{Code: 404, ErrorCode: 10059, Description: "stream not found"}, false},
		{context.DeadlineExceeded, false},
		{nil, false},
	} {
		if got := bus.StoreFull(c.err); got != c.want {
			t.Errorf("StoreFull(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// With no free-space reserve on a filesystem the store has to itself, the
// limit the guard sets is still one the server accepts.
func TestStoreGuardLimitStaysBelowTheServers(t *testing.T) {
	testenv.Slow(t)
	dir := testenv.Tmpfs(t, "4m")
	s, err := bus.StartEmbedded(bus.EmbeddedOptions{Listen: "127.0.0.1:-1", StoreDir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	for _, max := range []int64{0, 1 << 20} {
		st, err := bus.NewStoreGuard(s, dir, max, 0).Check()
		if err != nil {
			t.Fatalf("max_store %d: %v", max, err)
		}
		if st.Limit <= 0 || (max > 0 && st.Limit > max) {
			t.Errorf("max_store %d: limit %d", max, st.Limit)
		}
	}
}
