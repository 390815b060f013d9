package main

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// alerts -save fetches every attachment of the alerts it prints, checked
// against their sha256, under names made of the stream sequence, the film
// ID and the attachment's method and kind only.
func TestAlertsSaveFetchesAttachments(t *testing.T) {
	testenv.Slow(t)
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
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
	ctx := context.Background()
	if err := p.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	att, err := p.EnsureBucket(ctx, bus.StreamSpec{Name: "TRIAGED_HEATMAPS", Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	png := []byte("\x89PNG not really")
	a, err := att.Put(ctx, "k/cam-overlay.png", "image/png", png)
	if err != nil {
		t.Fatal(err)
	}
	a.Kind, a.Method = "overlay", "cam"
	bad := a
	bad.SHA256 = strings.Repeat("0", 64)
	bad.Kind = "raw" // (content type still PNG: saved as .png if it passed)
	for i, film := range []string{"0a1b2c3d4e5f6071", "../../../etc/x"} {
		r := &publish.Result{Schema: publish.ResultSchema, Film: publish.Film{SOPInstanceUID: "1.2.3." + string(rune('0'+i))}, ModelSet: "ms-x",
			Priority: "critical", Source: publish.Source{FilmID: film}, Attachments: []publish.Attachment{a, bad}}
		if _, err := p.PublishResult(ctx, r, true); err != nil {
			t.Fatal(err)
		}
	}

	dir := filepath.Join(t.TempDir(), "saved")
	code, out, errs := run("alerts", "-server", srv.ClientURL(), "-save", dir)
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	want := []string{"000001-0a1b2c3d4e5f6071-cam-overlay.png", "000002-film-cam-overlay.png"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("saved %v, want %v\n%s", names, want, errs)
	}
	b, _ := os.ReadFile(filepath.Join(dir, want[0]))
	if string(b) != string(png) {
		t.Errorf("saved content %q", b)
	}
	if !strings.Contains(errs, "sha256 does not match") {
		t.Errorf("the corrupt reference was not reported:\n%s", errs)
	}
	// Again: nothing is overwritten or duplicated.
	if code, _, errs := run("alerts", "-server", srv.ClientURL(), "-save", dir); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, errs)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files after a second run", len(ents))
	}
}
