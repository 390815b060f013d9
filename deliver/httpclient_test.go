package deliver_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/triaged/triaged/deliver"
)

// A destination behind TLS with a private CA: trusted through ca_file,
// refused (and retried, never dropped) without it.
func TestHTTPClientTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := deliver.NewHTTPClient(deliver.TLS{CAFile: ca}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := deliver.Post(context.Background(), c, srv.URL, []byte("{}"), nil); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	plain, _ := deliver.NewHTTPClient(deliver.TLS{}, 5*time.Second)
	err = deliver.Post(context.Background(), plain, srv.URL, []byte("{}"), nil)
	var se *deliver.SendError
	if !errors.As(err, &se) || !se.Retryable {
		t.Errorf("untrusted certificate: %v", err)
	}
	if _, err := deliver.NewHTTPClient(deliver.TLS{CAFile: filepath.Join(t.TempDir(), "none.pem")}, time.Second); err == nil {
		t.Error("missing CA file accepted")
	}
	// A huge response body is read only as far as the excerpt.
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		buf := make([]byte, 1<<20)
		for range 64 {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	defer big.Close()
	err = deliver.Post(context.Background(), plain, big.URL, []byte("{}"), nil)
	if !errors.As(err, &se) || se.Retryable || se.Status != 400 || len(se.Body) > 512 {
		t.Errorf("400 with a 64 MiB body: %v (body %d bytes)", err, len(se.Body))
	}
}
