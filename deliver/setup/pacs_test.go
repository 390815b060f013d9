package setup_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/deliver/setup"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/resultobj"
	"github.com/triaged/triaged/resultobj/record"
)

// From the YAML to a STOW-RS request carrying the bearer token read from
// its file and the film's two objects as application/dicom parts; a
// name shared with an alert destination is refused.
func TestPACSFromConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs an embedded JetStream server and a delivery (over a second)")
	}
	srv := testenv.NATS(t)
	var mu sync.Mutex
	var got []string // content types of the parts received
	var auth string
	stow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		auth = r.Header.Get("Authorization")
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || r.URL.Path != "/dicom-web/studies" {
			http.Error(w, "bad request", 400)
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		var refs []string
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			got = append(got, p.Header.Get("Content-Type"))
			_, _ = io.Copy(io.Discard, p)
		}
		for _, uid := range uids {
			refs = append(refs, fmt.Sprintf(`{"00081155":{"vr":"UI","Value":[%q]}}`, uid))
		}
		w.Header().Set("Content-Type", "application/dicom+json")
		fmt.Fprintf(w, `{"00081199":{"vr":"SQ","Value":[%s]}}`, strings.Join(refs, ","))
	}))
	t.Cleanup(stow.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stow.token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`
nats: {url: %q}
result_objects:
  enabled: true
  destinations:
    - {name: web, type: stowrs, url: %q, token_file: stow.token}
`, srv.ClientURL(), stow.URL+"/dicom-web")
	cfg, err := config.Parse([]byte(yaml), dir)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t)
	uids = []string{objs.UIDs.SRInstance, objs.UIDs.SCInstance}
	js := deliverOne(t, cfg, srv.ClientURL(), objs)
	mu.Lock()
	if auth != "Bearer s3cret" || len(got) != 2 || got[0] != "application/dicom" {
		t.Errorf("Authorization %q, parts %v", auth, got)
	}
	mu.Unlock()

	cfg.Deliver.Destinations = []config.DeliverDestination{{Name: "web", Type: "webhook", URL: "http://x"}}
	if _, err := setup.PACS(cfg, js, setup.Hooks{}); err == nil || !strings.Contains(err.Error(), "deliver.destinations") {
		t.Errorf("a name shared with an alert destination: %v", err)
	}
}

var uids []string

func objects(t *testing.T) *resultobj.Objects {
	t.Helper()
	src, err := resultobj.ReadSourceFile(testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"), decode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r := &publish.Result{Film: publish.Film{SOPInstanceUID: src.SOPInstanceUID}, Models: []publish.ModelScore{{Name: "m", Probability: 0.9}},
		Score: 0.9, Priority: "critical", ModelSet: "ms", ScoredAt: time.Now()}
	objs, err := resultobj.Build(src, r, pngOverlay(t), resultobj.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func pngOverlay(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// An outbox destination's dir is resolved against the config file's
// folder; a missing one fails the start, naming the destination and the
// path; an existing one receives the film's objects as
// <SOP Instance UID>.dcm.
func TestPACSOutboxFromConfig(t *testing.T) {
	dir := t.TempDir()
	yaml := `
result_objects:
  enabled: true
  destinations:
    - {name: gateway, type: outbox, dir: outbox}
`
	cfg, err := config.Parse([]byte(yaml), dir)
	if err != nil {
		t.Fatal(err)
	}
	outbox := filepath.Join(dir, "outbox")
	if _, err := setup.PACS(cfg, nil, setup.Hooks{}); err == nil || !strings.Contains(err.Error(), "result_objects.destinations[0] (gateway)") || !strings.Contains(err.Error(), outbox) {
		t.Errorf("missing outbox dir: %v", err)
	}
	if testing.Short() {
		t.Skip("skipping the delivery under -short: runs an embedded JetStream server")
	}
	if err := os.Mkdir(outbox, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := testenv.NATS(t)
	objs := objects(t)
	deliverOne(t, cfg, srv.ClientURL(), objs)
	for _, o := range objs.List() {
		b, err := os.ReadFile(filepath.Join(outbox, o.SOPInstanceUID+".dcm"))
		if err != nil || !bytes.Equal(b, o.File) {
			t.Errorf("%s.dcm: %d bytes (%v), want the object's %d", o.SOPInstanceUID, len(b), err, len(o.File))
		}
	}
}

// deliverOne stores objs in the record on the NATS server at url and runs
// the PACS delivery cfg configures until it has delivered them; it returns
// the JetStream context it used.
func deliverOne(t *testing.T, cfg *config.Config, url string, objs *resultobj.Objects) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	st, err := record.Open(context.Background(), js, record.Options{ManageStreams: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Put(context.Background(), objs, "critical", "ms", "1.2", "1.2.3", "t", "t"); err != nil {
		t.Fatal(err)
	}
	d, err := setup.PACS(cfg, js, setup.Hooks{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil || d == nil {
		t.Fatalf("PACS: %v %v", d, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, 30*time.Second, "delivered", func() bool { return d.Stats()[0].Delivered == 1 })
	return js
}
