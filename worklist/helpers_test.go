package worklist

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/heatmap"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/publish"
)

const (
	prefix       = "triaged"
	resultStream = "TRIAGED_RESULTS"
	alertStream  = "TRIAGED_ALERTS"
	bucket       = "TRIAGED_HEATMAPS"
)

// env is an embedded JetStream server with the daemon's streams, and a
// publisher as the daemon's.
type env struct {
	t   testing.TB
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *publish.Publisher
	att *publish.Attachments
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := testenv.NATS(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pub, err := publish.New(nc, publish.Options{
		Prefix:        prefix,
		Results:       bus.StreamSpec{Name: resultStream, Replicas: 1, DuplicateWindow: time.Hour},
		Alerts:        bus.StreamSpec{Name: alertStream, Replicas: 1, DuplicateWindow: time.Hour},
		ManageStreams: true,
		Timeout:       10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	att, err := pub.EnsureBucket(ctx, bus.StreamSpec{Name: bucket, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: s.ClientURL(), nc: nc, js: pub.JS, pub: pub, att: att}
}

// film returns a result as the daemon publishes it.
func film(i int, priority string, score float64, at time.Time) *publish.Result {
	sop := fmt.Sprintf("1.2.826.0.1.3680043.10.1234.%d", i)
	return &publish.Result{
		Schema: publish.ResultSchema,
		Source: publish.Source{Kind: "folder", Name: "/var/lib/triaged/incoming", File: fmt.Sprintf("film-%d.dcm", i), FilmID: fmt.Sprintf("%016x", i)},
		Film: publish.Film{StudyInstanceUID: sop + ".1", SeriesInstanceUID: sop + ".2", SOPInstanceUID: sop,
			SOPClassUID: "1.2.840.10008.5.1.4.1.1.1.1", Modality: "DX", BodyPart: "CHEST", ViewPosition: "PA",
			TransferSyntax: "1.2.840.10008.1.2", Rows: 1024, Columns: 1024},
		Models: []publish.ModelScore{
			{Name: "squeezenet1_1", Version: "2026-11-20", Provider: "CPUExecutionProvider", Probability: score},
			{Name: "resnet18", Version: "2026-11-20", Provider: "CPUExecutionProvider", Probability: math.Min(1, score*1.02)},
		},
		Score:          score,
		Priority:       priority,
		PriorityReason: fmt.Sprintf("score %.4f vs thresholds", score),
		Thresholds:     publish.Thresholds{Urgent: 0.2695, Critical: 0.9266, CalibratedOn: "validation split of models/split.json"},
		ModelSet:       "ms-741f6a8e2d17",
		Timings:        publish.Timings{QueueMS: 3.1, DecodeMS: 21.4, PreprocessMS: 9.8, InferenceMS: 14.1, TotalMS: 51, BatchSize: 3},
		ScoredAt:       at,
		Daemon:         "v0.1.0",
		Host:           "pacs-gw-1",
	}
}

// publishFilm publishes a result (and its alert when not routine) as the
// daemon does, and returns the film's key.
func (e *env) publishFilm(r *publish.Result) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.pub.PublishResult(ctx, r, r.Priority != "routine"); err != nil {
		e.t.Fatalf("publish result: %v", err)
	}
	return filmKey(publish.ResultID(r.Film.SOPInstanceUID, r.ModelSet))
}

// publishMany publishes n films in parallel: priorities cycle through
// critical, urgent and routine.
func (e *env) publishMany(n int, start time.Time) {
	e.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				prio, score := "routine", 0.05+float64(i%20)/100
				switch i % 10 {
				case 0:
					prio, score = "critical", 0.93+float64(i%7)/100
				case 1, 2, 3:
					prio, score = "urgent", 0.3+float64(i%50)/100
				}
				r := film(100000+i, prio, score, start.Add(time.Duration(i)*time.Second))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := e.pub.PublishResult(ctx, r, prio != "routine")
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

func (e *env) publishEvent(kind, id, code string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev := &publish.Event{Schema: publish.EventSchema, Kind: kind, MessageID: id, Code: code, Reason: "test " + code,
		Source: publish.Source{Kind: "folder", Name: "/in", FilmID: id}, At: time.Now().UTC()}
	if _, err := e.pub.PublishEvent(ctx, ev); err != nil {
		e.t.Fatal(err)
	}
	return filmKey("event:" + id)
}

// overlay renders a real heatmap overlay (the daemon's renderer, over a
// film of the shared set) and stores it as the daemon does.
func (e *env) overlay(name string) publish.Attachment {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.SharedData(e.t), "cxr", "images",
		"actualmed_CR.1.2.840.113564.1722810170.20200320011259312440.1003000225002.jpg"))
	if err != nil {
		e.t.Fatal(err)
	}
	g, err := decode.ImageFile(data, decode.DefaultLimits)
	if err != nil {
		e.t.Fatal(err)
	}
	in := preprocess.Prepare(g)
	m := &heatmap.Map{Method: "cam", Model: "squeezenet1_1", Unit: "class activation (relative)", V: make([]float32, heatmap.Side*heatmap.Side)}
	for y := range heatmap.Side {
		for x := range heatmap.Side {
			dx, dy := float64(x-150)/40, float64(y-90)/50
			m.V[y*heatmap.Side+x] = float32(math.Exp(-(dx*dx + dy*dy)))
		}
	}
	img, err := heatmap.Render(g, in.Crop, m, heatmap.DefaultRender)
	if err != nil {
		e.t.Fatal(err)
	}
	png, err := heatmap.EncodePNG(img)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := e.att.Put(ctx, name, "image/png", png)
	if err != nil {
		e.t.Fatal(err)
	}
	a.Kind, a.Method, a.Model = "overlay", "cam", "squeezenet1_1"
	return a
}

// logBuf is a goroutine-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve starts a page on a loopback port and stops it when the test ends,
// checking that Serve returned.
func (e *env) serve(o Options) (*Server, string, *logBuf) {
	e.t.Helper()
	lb := &logBuf{}
	o.JS, o.Prefix, o.ResultStream, o.AlertStream = e.js, prefix, resultStream, alertStream
	if o.Publisher == nil {
		o.Publisher = e.pub
	}
	o.Log = zerolog.New(lb)
	s, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ln := testenv.Serve(e.t, s.Serve)
	testenv.Eventually(e.t, 30*time.Second, "the worklist to replay the streams", s.Ready)
	return s, "http://" + ln.Addr().String(), lb
}
