package worklist

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/publish"
)

// BenchmarkList renders the first page over 10,000 films.
func BenchmarkList(b *testing.B) {
	s, err := New(Options{JS: nilJS{}, Prefix: prefix, ResultStream: resultStream, AlertStream: alertStream, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-3 * time.Hour)
	for i := range 10000 {
		prio := []string{"critical", "urgent", "urgent", "urgent", "routine", "routine", "routine", "routine", "routine", "routine"}[i%10]
		r := film(i, prio, 0.5, start.Add(time.Duration(i)*time.Second))
		r.MessageID = ""
		if _, err := s.ix.addResult(r, uint64(i+1), false); err != nil {
			b.Fatal(err)
		}
	}
	h := s.Handler()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = "127.0.0.1:1234"
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// nilJS stands in where the benchmark never reaches the streams.
type nilJS struct{ jetstream.JetStream }

// BenchmarkApply is the replay's cost per result message, without NATS.
func BenchmarkApply(b *testing.B) {
	s, err := New(Options{JS: nilJS{}, Prefix: prefix, ResultStream: resultStream, AlertStream: alertStream, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([][]byte, 10000)
	for i := range msgs {
		r := film(i, "urgent", 0.5, time.Now())
		r.Kind, r.MessageID = "result", publish.ResultID(r.Film.SOPInstanceUID, r.ModelSet)
		msgs[i], _ = publish.Encode(r)
	}
	i := 0
	for b.Loop() {
		if err := s.apply(prefix+".result", msgs[i%len(msgs)], uint64(i+1)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
