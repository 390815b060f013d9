package daemon_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// lockedBuffer collects every log line the daemon writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// No patient data in logs or metrics, even by accident: canary films whose
// patient name, ID and birth date, file names, and a header value echoed in
// a refusal carry marker strings go through the whole pipeline (scored,
// refused, quarantined) with every log line at debug level, and neither the
// logs, the metrics nor the refusal reasons carry a marker.
func TestNoPatientDataInLogsMetricsOrReasons(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	cfg.Log.Level = "debug"
	logs := &lockedBuffer{}
	d, err := daemon.New(cfg, zerolog.New(logs).Level(zerolog.DebugLevel), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx); d.Close() }()
	defer func() { cancel(); <-done }()
	<-d.Ready
	drop := cfg.Ingest.Folders[0].Path

	const name, id, birth, file = "CANARYNAME^Patient", "CANARYID123", "19010101", "CANARYFILE"
	patient := []dicomtest.Elem{
		dicomtest.Str(dicomtest.Tag(0x0010, 0x0010), "PN", name),
		dicomtest.Str(dicomtest.Tag(0x0010, 0x0020), "LO", id),
		dicomtest.Str(dicomtest.Tag(0x0010, 0x0030), "DA", birth),
	}
	good := dicomtest.Image{Rows: 300, Columns: 260, BitsAllocated: 16, BitsStored: 12, Pixels: make([]int, 300*260),
		BodyPart: "CHEST", View: "PA", SOPInstanceUID: "2.25.99887766.1", Extra: patient}
	for i := range good.Pixels {
		good.Pixels[i] = 500 + i%2000
	}
	bad := good
	bad.SOPInstanceUID = "2.25.99887766.2"
	bad.Photometric = "CanaryPhoto^Name" // a header value a refusal might echo
	lateral := good
	lateral.SOPInstanceUID = "2.25.99887766.3"
	lateral.View = "Canaryview" // turned away by the routing filter, which names the view
	for n, b := range map[string][]byte{
		file + "-good.dcm": good.Bytes(), file + "-bad.dcm": bad.Bytes(), file + "-lateral.dcm": lateral.Bytes(),
		file + "-notes.txt": []byte("not a film"), file + "-cut.dcm": good.Bytes()[:900],
	} {
		if err := os.WriteFile(filepath.Join(drop, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 90*time.Second, "every canary film handled", func() bool {
		return count(filepath.Join(drop, "done"), isFilm)+count(filepath.Join(drop, "failed"), isFilm) == 5
	})
	rec := httptest.NewRecorder()
	d.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	metricsText, _ := io.ReadAll(rec.Body)
	var reasons strings.Builder
	for _, e := range events(t, srv.ClientURL()) {
		reasons.WriteString(e.Reason + "\n")
	}
	for _, e := range skippedEvents(t, srv.ClientURL()) {
		reasons.WriteString(e.Reason + "\n")
	}
	for what, text := range map[string]string{"logs": logs.String(), "metrics": string(metricsText), "event reasons": reasons.String()} {
		for _, marker := range []string{"CANARYNAME", "CANARYID", birth, "CANARYFILE", "CanaryPhoto", "Canaryview"} {
			if strings.Contains(text, marker) {
				i := strings.Index(text, marker)
				t.Errorf("%s carry %q: ...%s...", what, marker, text[max(0, i-200):min(len(text), i+100)])
			}
		}
	}
	if !strings.Contains(logs.String(), "film scored") {
		t.Errorf("the canary run scored nothing; logs:\n%s", logs.String())
	}
}
