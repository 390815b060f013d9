package film

import (
	"testing"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/triage"
)

// A result says which decode made the film's pixels: decode.reduced only
// for a reduced-resolution decode, absent at full size.
func TestMessageRecordsReducedDecode(t *testing.T) {
	eng := &triage.Engine{}
	for _, r := range []int{0, 2} {
		a := &Analysis{Header: &decode.Header{Rows: 2000, Columns: 1800}, Result: &triage.Result{}, Reduced: r}
		m := a.Message(eng, publish.Source{}, "test", "host")
		if (r == 0) != (m.Decode == nil) || (r > 0 && *m.Decode != publish.Decode{Reduced: r}) {
			t.Errorf("reduced %d: decode %+v", r, m.Decode)
		}
		if m.Film.Rows != 2000 || m.Film.Columns != 1800 {
			t.Errorf("reduced %d: film %dx%d, want the header's 1800x2000", r, m.Film.Columns, m.Film.Rows)
		}
	}
}
