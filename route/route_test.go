package route

import (
	"testing"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/decode"
)

func TestDefaultFilter(t *testing.T) {
	f := New(config.Default().Route)
	cr := "1.2.840.10008.5.1.4.1.1.1"
	cases := []struct {
		name string
		h    decode.Header
		code string
	}{
		{"chest PA CR", decode.Header{SOPClassUID: cr, Modality: "CR", BodyPart: "CHEST", ViewPosition: "PA"}, ""},
		{"chest AP DX", decode.Header{SOPClassUID: "1.2.840.10008.5.1.4.1.1.1.1", Modality: "DX", BodyPart: "CHEST", ViewPosition: "AP"}, ""},
		{"secondary capture, tags missing (the NIH film)", decode.Header{SOPClassUID: "1.2.840.10008.5.1.4.1.1.7", Modality: "DX"}, ""},
		{"no modality at all", decode.Header{SOPClassUID: cr}, ""},
		{"lateral", decode.Header{SOPClassUID: cr, Modality: "CR", BodyPart: "CHEST", ViewPosition: "LL"}, CodeViewPosition},
		{"extremity", decode.Header{SOPClassUID: cr, Modality: "CR", BodyPart: "EXTREMITY", ViewPosition: "AP"}, CodeBodyPart},
		{"CT", decode.Header{SOPClassUID: cr, Modality: "CT", BodyPart: "CHEST"}, CodeModality},
		{"DX for processing", decode.Header{SOPClassUID: "1.2.840.10008.5.1.4.1.1.1.1.1", Modality: "DX", BodyPart: "CHEST"}, CodeSOPClass},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := f.Decide(&c.h)
			if d.Code != c.code || d.Skip != (c.code != "") {
				t.Fatalf("got %+v, want code %q", d, c.code)
			}
			if d.Skip && d.Reason == "" {
				t.Fatal("no reason")
			}
		})
	}
}

func TestMissingSkipAndEmptyLists(t *testing.T) {
	r := config.Default().Route
	r.Missing = "skip"
	h := decode.Header{SOPClassUID: "1.2.840.10008.5.1.4.1.1.7", Modality: "DX"}
	if d := New(r).Decide(&h); !d.Skip || d.Code != CodeBodyPart {
		t.Fatalf("got %+v", d)
	}
	r.BodyParts, r.ViewPositions = nil, nil
	if d := New(r).Decide(&h); d.Skip {
		t.Fatalf("empty lists filter nothing: %+v", d)
	}
	r.Modalities = []string{"cr"}
	if d := New(r).Decide(&decode.Header{SOPClassUID: h.SOPClassUID, Modality: "CR"}); d.Skip {
		t.Fatalf("configured values are case-insensitive: %+v", d)
	}
}

// A reason repeats a header value only when it is a valid code string: a
// hostile file may put anything (a patient's name) in any attribute.
func TestReasonIsSafe(t *testing.T) {
	f := New(config.Default().Route)
	d := f.Decide(&decode.Header{Modality: "CT\n{\"x\":1}"})
	if !d.Skip || d.Reason != `modality (a value that is not a valid code string) is not in route.modalities [CR DX]` {
		t.Fatalf("%q", d.Reason)
	}
	if d := f.Decide(&decode.Header{Modality: "CT"}); d.Reason != `modality "CT" is not in route.modalities [CR DX]` {
		t.Fatalf("%q", d.Reason)
	}
}
