package record

import (
	"encoding/json"
	"testing"
)

// FuzzDecode: whatever a message on the objects stream holds, Decode
// returns a message that passes its checks or an error, never a panic.
func FuzzDecode(f *testing.F) {
	good, _ := json.Marshal(Message{Schema: Schema, MessageID: "objects:1.2.3", Objects: []Ref{{Kind: "sr", SOPClassUID: "1.2", SOPInstanceUID: "1.2.3",
		TransferSyntaxUID: "1.2.840.10008.1.2.1", Bucket: DefaultBucket, Name: "1.2.3", Size: 10}}})
	f.Add(good)
	f.Add([]byte(`{"schema":"triaged.result-objects/v1","objects":[{"size":-1}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if len(m.Objects) == 0 || len(m.Objects) > 8 {
			t.Fatalf("%d objects accepted", len(m.Objects))
		}
		for _, o := range m.Objects {
			if o.Size <= 0 || o.Size > MaxObject || o.Name == "" {
				t.Fatalf("object accepted: %+v", o)
			}
		}
	})
}
