package pacs

import (
	"errors"
	"testing"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/resultobj"
)

// Every storage status lands in the right class: accepted, retried
// without limit, or refused (retried a few times, then dead-lettered).
func TestCheckStatus(t *testing.T) {
	for _, c := range []struct {
		status        uint16
		ok, retryable bool
	}{
		{0x0000, true, false}, {0x0001, true, false}, {0xB000, true, false}, {0xB007, true, false}, {0xB006, true, false},
		{0xA700, false, true}, {0xA7FF, false, true}, {0x0110, false, true}, {0x0213, false, true}, {0xFE00, false, true},
		{0x0122, false, false}, {0x0124, false, false}, {0xA900, false, false}, {0xC000, false, false}, {0xC123, false, false}, {0x0211, false, false},
	} {
		err := checkStatus(c.status, "comment")
		if (err == nil) != c.ok {
			t.Errorf("0x%04X: error %v, want ok=%v", c.status, err, c.ok)
			continue
		}
		if err != nil {
			var se *deliver.SendError
			if !errors.As(err, &se) || se.Retryable != c.retryable || se.Body != "comment" {
				t.Errorf("0x%04X: %#v, want retryable=%v", c.status, err, c.retryable)
			}
		}
	}
}

// A STOW-RS response counts as success only when every instance is in
// the Referenced SOP Sequence and none failed, whatever the HTTP status.
func TestSTOWResponse(t *testing.T) {
	objs := []resultobj.Object{{SOPClassUID: resultobj.Comprehensive3DSRStorage, SOPInstanceUID: "1.2.3"}, {SOPClassUID: resultobj.SecondaryCaptureStorage, SOPInstanceUID: "1.2.4"}}
	ref := func(uid string, extra string) string {
		return `{"00081150":{"vr":"UI","Value":["1.2"]},"00081155":{"vr":"UI","Value":["` + uid + `"]}` + extra + `}`
	}
	s, _ := NewSTOW(STOWOptions{Name: "t", URL: "http://x"})
	for _, c := range []struct {
		name, body    string
		ok, retryable bool
	}{
		{"both stored", `{"00081199":{"vr":"SQ","Value":[` + ref("1.2.3", "") + `,` + ref("1.2.4", "") + `]}}`, true, false},
		{"stored with a warning", `{"00081199":{"vr":"SQ","Value":[` + ref("1.2.3", `,"00081196":{"vr":"US","Value":[45063]}`) + `,` + ref("1.2.4", "") + `]}}`, true, false},
		{"one failed (202), out of resources", `{"00081199":{"vr":"SQ","Value":[` + ref("1.2.3", "") + `]},"00081198":{"vr":"SQ","Value":[` + ref("1.2.4", `,"00081197":{"vr":"US","Value":[42752]}`) + `]}}`, false, true},
		{"one failed, SOP class not supported", `{"00081199":{"vr":"SQ","Value":[` + ref("1.2.3", "") + `]},"00081198":{"vr":"SQ","Value":[` + ref("1.2.4", `,"00081197":{"vr":"US","Value":[290]}`) + `]}}`, false, false},
		{"one missing", `{"00081199":{"vr":"SQ","Value":[` + ref("1.2.3", "") + `]}}`, false, false},
		{"empty (Orthanc's filter failed)", `{"00081198":{"vr":"SQ"},"00081199":{"vr":"SQ"}}`, false, false},
	} {
		res, err := ParseResponse([]byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		err = s.check(202, res, objs, []byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		var se *deliver.SendError
		if err != nil && (!errors.As(err, &se) || se.Retryable != c.retryable) {
			t.Errorf("%s: %v, want retryable=%v", c.name, err, c.retryable)
		}
	}
	for _, bad := range []string{`[]`, `{"00081199":{"vr":"SQ","Value":[{}]}}`, `{"00081199":{"vr":"SQ","Value":[` + ref("1.2.3", `,"00081196":{"vr":"US","Value":[70000]}`) + `]}}`} {
		if _, err := ParseResponse([]byte(bad)); err == nil {
			t.Errorf("%s: parsed", bad)
		}
	}
}

// FuzzParseResponse: whatever a STOW-RS server answers, the parser
// returns an answer or an error, never a panic.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"00081199":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2.3"]}}]}}`))
	f.Add([]byte(`{"00081198":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2.3"]},"00081197":{"vr":"US","Value":[42752]}}]}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err == nil && (r.Stored == nil || r.Failed == nil) {
			t.Fatal("nil maps")
		}
	})
}
