// Package delivertest gives the delivery tests their real components: an
// embedded JetStream server with the daemon's streams, the real publisher,
// and an HTTP receiver that records what reaches it.
package delivertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// Key is the triage ID key of the tests.
var Key = []byte("0123456789abcdef-test-triage-key")

// Env is a JetStream server with the result and alert streams.
type Env struct {
	Server *server.Server
	Pub    *publish.Publisher
	JS     jetstream.JetStream
}

// Start starts the server and creates the streams as the daemon does.
func Start(t testing.TB) *Env {
	t.Helper()
	srv := testenv.NATS(t)
	nc := Connect(t, srv.ClientURL())
	p, err := publish.New(nc, publish.Options{
		Prefix:        "triaged",
		Results:       bus.StreamSpec{Name: "TRIAGED_RESULTS", Replicas: 1, DuplicateWindow: time.Hour},
		Alerts:        bus.StreamSpec{Name: "TRIAGED_ALERTS", Replicas: 1, DuplicateWindow: time.Hour},
		ManageStreams: true,
		Timeout:       5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EnsureStreams(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &Env{Server: srv, Pub: p, JS: p.JS}
}

// Connect opens a connection closed when the test ends.
func Connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream opens a JetStream context on its own connection.
func JetStream(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Alert publishes a positive film's alert (and result) the way the daemon
// does and returns the alert ID.
func (e *Env) Alert(t testing.TB, n int, priority string, score float64) string {
	t.Helper()
	r := &publish.Result{
		Schema: publish.ResultSchema, Source: publish.Source{Kind: "folder", Name: "/in", File: fmt.Sprintf("patient-%d.dcm", n), FilmID: fmt.Sprintf("%016x", n)},
		Film:  publish.Film{SOPInstanceUID: fmt.Sprintf("1.2.826.0.1.3680043.8.498.%d", n), Modality: "DX"},
		Score: score, Priority: priority, ModelSet: "ms-0123456789ab", ScoredAt: time.Now().UTC(), Daemon: "test", Host: "h",
	}
	if _, err := e.Pub.PublishResult(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	return publish.AlertID(r.Film.SOPInstanceUID, r.ModelSet, priority)
}

// Ack publishes an acknowledgement.
func (e *Env) Ack(t testing.TB, alertID, by string) {
	t.Helper()
	if _, err := e.Pub.PublishAck(context.Background(), &publish.Ack{AlertID: alertID, By: by, Via: "cli"}); err != nil {
		t.Fatal(err)
	}
}

// Request is one request the receiver got.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
	Status int // what the receiver answered
	At     time.Time
}

// Receiver is an HTTP server standing in for a receiver. Respond decides
// each answer (default 200); it may block.
type Receiver struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []Request
	Respond func(r *http.Request, body []byte) (status int, header http.Header, respBody string)
}

// NewReceiver starts a receiver on loopback, closed when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	rc := &Receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rc.mu.Lock()
		respond := rc.Respond
		rc.mu.Unlock()
		status, hdr, rb := 200, http.Header(nil), ""
		if respond != nil {
			status, hdr, rb = respond(r, body)
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, Request{Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body, Status: status, At: time.Now()})
		rc.mu.Unlock()
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, rb)
	}))
	t.Cleanup(rc.Server.Close)
	return rc
}

// SetRespond replaces the answer function.
func (rc *Receiver) SetRespond(f func(r *http.Request, body []byte) (int, http.Header, string)) {
	rc.mu.Lock()
	rc.Respond = f
	rc.mu.Unlock()
}

// Requests returns every request so far.
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Request(nil), rc.reqs...)
}

// Accepted returns the requests answered 2xx.
func (rc *Receiver) Accepted() []Request {
	var out []Request
	for _, r := range rc.Requests() {
		if r.Status >= 200 && r.Status < 300 {
			out = append(out, r)
		}
	}
	return out
}
