package worklist

import (
	"net/url"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/publish"
)

func FuzzParseUsers(f *testing.F) {
	f.Add([]byte("alice:$2y$10$Y3Uo9xYF1YkXJvM4rBHrRe0Jr6v2wA2GfE0m3CqgL1mAqWcbW1C8K\n# c\n\nbob:$2a$12$abc\n"))
	f.Add([]byte("alice\n"))
	f.Add([]byte(":x\n\x00:\xff\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := ParseUsers(data)
		if err != nil {
			return
		}
		for name := range users {
			if checkName(name) != nil {
				t.Fatalf("accepted user name %q", name)
			}
		}
	})
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("svc:0123456789abcdef0123\nward:fedcba9876543210fedc\n"))
	f.Add([]byte("svc:short\n"))
	f.Add([]byte("svc:0123456789abcdef\nsvc2:0123456789abcdef\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, err := ParseTokens(data)
		if err != nil {
			return
		}
		seen := map[[32]byte]bool{}
		for _, tk := range toks {
			if seen[tk.sum] || checkName(tk.name) != nil {
				t.Fatalf("accepted %+v", tk)
			}
			seen[tk.sum] = true
		}
	})
}

// FuzzApply feeds arbitrary stream messages to the index: whatever a
// stream holds, the page neither crashes nor holds more than its bound.
func FuzzApply(f *testing.F) {
	r := film(1, "critical", 0.95, time.Unix(1700000000, 0))
	r.MessageID = publish.AlertID(r.Film.SOPInstanceUID, r.ModelSet, "critical")
	alert, _ := publish.Encode(r)
	ack, _ := publish.Encode(&publish.Ack{AlertID: r.MessageID, By: "alice", Via: "worklist"})
	upd, _ := publish.Encode(&publish.Update{AlertID: r.MessageID, Attachments: []publish.Attachment{{Kind: "overlay", Bucket: "B", Name: "n"}}})
	ev, _ := publish.Encode(&publish.Event{Kind: "error", MessageID: "f:error:x", Code: "x"})
	f.Add(uint8(0), alert, uint8(1), ack)
	f.Add(uint8(0), alert, uint8(2), upd)
	f.Add(uint8(3), alert, uint8(4), ev)
	f.Add(uint8(5), []byte(`{"film":{"sop_instance_uid":"1"},"model_set":"m","priority":"x"}`), uint8(1), []byte(`{"alert_id":"1:m:x"}`))
	subjects := []string{"alert.critical", "alert.ack", "alert.update", "result", "error", "skipped", "alert.urgent", "other"}
	f.Fuzz(func(t *testing.T, s1 uint8, d1 []byte, s2 uint8, d2 []byte) {
		s, err := New(Options{JS: nilJS{}, Prefix: prefix, ResultStream: resultStream, AlertStream: alertStream, MaxFilms: 2, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range []struct {
			s uint8
			d []byte
		}{{s1, d1}, {s2, d2}, {s1, d2}, {s2, d1}} {
			s.apply(prefix+"."+subjects[int(m.s)%len(subjects)], m.d, uint64(i+1))
		}
		now := time.Now()
		for _, tab := range []string{"films", "events"} {
			rows, _ := s.ix.list(Filter{Tab: tab}, now)
			for _, row := range rows {
				if _, ok := s.ix.detail(row.Key, now); !ok {
					t.Fatal("listed row without detail")
				}
				if _, err := s.renderRow(&row, "tok"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, held := s.ix.counts(); held > 2 {
			t.Fatalf("held %d entries, bound 2", held)
		}
	})
}

func FuzzFilter(f *testing.F) {
	f.Add("tab=events&priority=error&since=1h&ack=no")
	f.Add("since=-5s&priority=<script>")
	f.Add("priority=not_assessable&ack=no")
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		s := &Server{pageRows: 200}
		flt := s.filter(v)
		if flt.Since < 0 || (flt.Tab != "films" && flt.Tab != "events") {
			t.Fatalf("filter %+v from %q", flt, q)
		}
		switch flt.Priority {
		case "", "critical", "urgent", "routine", "skipped", "error", publish.PriorityNotAssessable:
		default:
			t.Fatalf("priority %q", flt.Priority)
		}
	})
}
