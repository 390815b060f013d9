package ops

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
)

type status struct{ health, ready atomic.Value }

func (s *status) Health() []string {
	v, _ := s.health.Load().([]string)
	return v
}

func (s *status) Readiness() []string {
	v, _ := s.ready.Load().([]string)
	return v
}

func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	r, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

func TestEndpointsReportReasons(t *testing.T) {
	st := &status{}
	srv, err := Listen("127.0.0.1:0", Handler(st, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "m 1\n") })), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if c, b := get(t, srv.Addr(), "/healthz"); c != 200 || b != "ok\n" {
		t.Fatalf("healthz %d %q", c, b)
	}
	if c, b := get(t, srv.Addr(), "/readyz"); c != 200 || b != "ready\n" {
		t.Fatalf("readyz %d %q", c, b)
	}
	st.ready.Store([]string{"starting: scan", "NATS is disconnected"})
	st.health.Store([]string{"pipeline wedged"})
	if c, b := get(t, srv.Addr(), "/readyz"); c != 503 || b != "starting: scan\nNATS is disconnected\n" {
		t.Fatalf("readyz %d %q", c, b)
	}
	if c, b := get(t, srv.Addr(), "/healthz"); c != 503 || !strings.Contains(b, "wedged") {
		t.Fatalf("healthz %d %q", c, b)
	}
	if c, b := get(t, srv.Addr(), "/metrics"); c != 200 || b != "m 1\n" {
		t.Fatalf("metrics %d %q", c, b)
	}
	if c, _ := get(t, srv.Addr(), "/nothing"); c != 404 {
		t.Fatalf("unknown path: %d", c)
	}
	// A taken address fails at once.
	if _, err := Listen(srv.Addr(), http.NotFoundHandler(), zerolog.Nop()); err == nil {
		t.Fatal("listening twice on one address succeeded")
	}
}

type describedStatus struct{ status }

func (describedStatus) ReadyDetails() []string {
	return []string{"model m 1: CPUExecutionProvider (onnxruntime.device cuda)"}
}

// A ready daemon lists its models' execution providers after "ready".
func TestReadyzListsProviders(t *testing.T) {
	st := &describedStatus{}
	srv, err := Listen("127.0.0.1:0", Handler(st, http.NotFoundHandler()), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if c, b := get(t, srv.Addr(), "/readyz"); c != 200 || b != "ready\nmodel m 1: CPUExecutionProvider (onnxruntime.device cuda)\n" {
		t.Fatalf("readyz %d %q", c, b)
	}
}
