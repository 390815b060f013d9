package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// heatConfig makes every scored film critical (thresholds near 0, so the
// test does not depend on what the committed model thinks of the film) and
// occlusion cheap: 32x32 with stride 32, 49 passes.
func heatConfig(t *testing.T, url string, budget time.Duration) *config.Config {
	cfg := newConfig(t, url)
	cfg.Triage.UrgentThreshold, cfg.Triage.CriticalThreshold = 0.0001, 0.0002
	cfg.Heatmap.Occlusion.Stride = 32
	cfg.Heatmap.Occlusion.Budget = config.OcclusionBudget{Critical: config.Budget(budget), Urgent: config.BudgetOff}
	return cfg
}

type alertMsgs struct {
	alerts  []publish.Result
	updates []publish.Update
	ids     []string // Nats-Msg-Id of updates
}

func alertStream(t *testing.T, url string) alertMsgs {
	t.Helper()
	var out alertMsgs
	for _, m := range testenv.StreamMessages(t, url, "TRIAGED_ALERTS") {
		if m.Subject == "triaged.alert.update" {
			var u publish.Update
			if err := json.Unmarshal(m.Data, &u); err != nil {
				t.Fatal(err)
			}
			out.updates = append(out.updates, u)
			out.ids = append(out.ids, m.Header.Get(nats.MsgIdHdr))
			continue
		}
		var r publish.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		out.alerts = append(out.alerts, r)
	}
	return out
}

// fetchAll reads every attachment back through its reference (size and
// sha256 checked) and checks what it holds.
func fetchAll(t *testing.T, url string, as []publish.Attachment) map[string]int {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kinds := map[string]int{}
	for _, a := range as {
		b, err := publish.FetchAttachment(context.Background(), js, a)
		if err != nil {
			t.Fatalf("attachment %+v: %v", a, err)
		}
		if a.Bucket != "TRIAGED_HEATMAPS" || a.Crop == nil || a.Crop.W <= 0 {
			t.Errorf("attachment reference %+v", a)
		}
		switch a.Kind {
		case "overlay":
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil || a.ContentType != "image/png" {
				t.Fatalf("overlay %s: %v (%s)", a.Name, err, a.ContentType)
			}
			if sz := img.Bounds().Size(); sz.X > 1024 || sz.Y > 1024+200 || sz.X < 512 {
				t.Errorf("overlay %s is %v", a.Name, sz)
			}
		case "raw":
			if len(b) != 128+4*224*224 || a.ContentType != "application/x-npy" || a.Unit == "" {
				t.Errorf("raw map %s: %d bytes, %s, unit %q", a.Name, len(b), a.ContentType, a.Unit)
			}
		default:
			t.Errorf("attachment kind %q", a.Kind)
		}
		kinds[a.Method+"/"+a.Kind]++
	}
	return kinds
}

func dropNIH(t *testing.T, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	drop(t, dir, name, b)
}

// With a budget it fits in, the occlusion map goes out with the alert,
// beside the CAM; the alert and the result reference the same objects.
func TestAlertCarriesHeatmaps(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	h := start(t, heatConfig(t, srv.ClientURL(), 5*time.Minute))
	dropNIH(t, h.drop, "a.dcm")
	testenv.Eventually(t, 60*time.Second, "film done", func() bool { return count(filepath.Join(h.drop, "done"), isFilm) == 1 })
	as := alertStream(t, h.url)
	if len(as.alerts) != 1 || len(as.updates) != 0 {
		t.Fatalf("%d alerts, %d updates; want 1 and 0", len(as.alerts), len(as.updates))
	}
	a := as.alerts[0]
	if a.Priority != "critical" || len(a.PendingAttachments) != 0 || len(a.HeatmapNotes) != 0 || a.Timings.HeatmapMS <= 0 {
		t.Errorf("alert: priority %s, pending %v, notes %v, heatmap_ms %v", a.Priority, a.PendingAttachments, a.HeatmapNotes, a.Timings.HeatmapMS)
	}
	kinds := fetchAll(t, h.url, a.Attachments)
	for _, k := range []string{"cam/overlay", "cam/raw", "occlusion/overlay", "occlusion/raw"} {
		if kinds[k] != 1 {
			t.Errorf("alert attachments %v: want one %s", kinds, k)
		}
	}
	for _, rs := range results(t, h.url) {
		if len(rs[0].Attachments) != 4 || rs[0].Attachments[0].SHA256 != a.Attachments[0].SHA256 {
			t.Errorf("the result references %+v", rs[0].Attachments)
		}
	}
}

// With no budget the alert goes out with the CAM and says the occlusion map
// is pending; the map follows as an update, and only then is the film
// acknowledged. A resend of the same instance neither alerts nor updates
// again.
func TestOcclusionFollowsAsAnUpdate(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	h := start(t, heatConfig(t, srv.ClientURL(), 0))
	dropNIH(t, h.drop, "a.dcm")
	testenv.Eventually(t, 60*time.Second, "film done", func() bool { return count(filepath.Join(h.drop, "done"), isFilm) == 1 })
	// The film is acknowledged after the update: both must be stored now.
	as := alertStream(t, h.url)
	if len(as.alerts) != 1 || len(as.updates) != 1 {
		t.Fatalf("%d alerts, %d updates; want 1 and 1", len(as.alerts), len(as.updates))
	}
	a, u := as.alerts[0], as.updates[0]
	if len(a.PendingAttachments) != 1 || a.PendingAttachments[0] != "occlusion" {
		t.Errorf("alert pending %v, want [occlusion]", a.PendingAttachments)
	}
	if k := fetchAll(t, h.url, a.Attachments); k["cam/overlay"] != 1 || k["cam/raw"] != 1 || len(k) != 2 {
		t.Errorf("alert attachments %v, want the CAM only", k)
	}
	if u.AlertID != a.MessageID || u.Kind != "update" || u.Schema != publish.UpdateSchema || as.ids[0] != u.MessageID {
		t.Errorf("update %+v (msg id %s) for alert %s", u, as.ids[0], a.MessageID)
	}
	if k := fetchAll(t, h.url, u.Attachments); k["occlusion/overlay"] != 1 || k["occlusion/raw"] != 1 || len(k) != 2 {
		t.Errorf("update attachments %v, want the occlusion map", k)
	}

	dropNIH(t, h.drop, "resent.dcm")
	testenv.Eventually(t, 60*time.Second, "resend done", func() bool { return count(filepath.Join(h.drop, "done"), isFilm) == 2 })
	if as := alertStream(t, h.url); len(as.alerts) != 1 || len(as.updates) != 1 {
		t.Errorf("after a resend: %d alerts, %d updates; want 1 and 1", len(as.alerts), len(as.updates))
	}
}

// A daemon stopped after the alert but before the occlusion update leaves
// the film unacknowledged; the next start processes it again and sends the
// update it owes, without a second alert.
func TestUpdateOwedAcrossRestart(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := heatConfig(t, srv.ClientURL(), 0)
	// 1x1 patches: 50176 passes, far longer than this test waits.
	cfg.Heatmap.Occlusion.Size, cfg.Heatmap.Occlusion.Stride = 1, 1
	cfg.Pipeline.DrainTimeout = time.Second
	h := start(t, cfg)
	dropNIH(t, h.drop, "a.dcm")
	testenv.Eventually(t, 60*time.Second, "alert stored", func() bool { return len(alertStream(t, h.url).alerts) == 1 })
	h.stop()
	if n := count(filepath.Join(h.drop, "done"), isFilm); n != 0 {
		t.Fatalf("%d films acknowledged before their update was stored", n)
	}
	if n := count(filepath.Join(h.drop, ".processing"), isFilm); n != 1 {
		t.Fatalf("%d films left in processing, want 1", n)
	}

	cfg.Heatmap.Occlusion.Size, cfg.Heatmap.Occlusion.Stride = 32, 32
	h2 := start(t, cfg)
	testenv.Eventually(t, 60*time.Second, "film done after restart", func() bool { return count(filepath.Join(h2.drop, "done"), isFilm) == 1 })
	as := alertStream(t, h2.url)
	if len(as.alerts) != 1 || len(as.updates) != 1 || as.updates[0].AlertID != as.alerts[0].MessageID {
		t.Fatalf("%d alerts, %d updates after the restart; want 1 and 1", len(as.alerts), len(as.updates))
	}
	// The CAM stored by the first run is the one the alert references.
	fetchAll(t, h2.url, as.alerts[0].Attachments)
	fetchAll(t, h2.url, as.updates[0].Attachments)
}

func TestHeatmapsCanBeTurnedOff(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := heatConfig(t, srv.ClientURL(), 0)
	cfg.Heatmap.Enabled = false
	h := start(t, cfg)
	dropNIH(t, h.drop, "a.dcm")
	testenv.Eventually(t, 60*time.Second, "film done", func() bool { return count(filepath.Join(h.drop, "done"), isFilm) == 1 })
	as := alertStream(t, h.url)
	if len(as.alerts) != 1 || len(as.alerts[0].Attachments) != 0 || len(as.alerts[0].PendingAttachments) != 0 {
		t.Fatalf("alerts %+v", as.alerts)
	}
}

// nihCopy is the NIH film with its SOP Instance UID's last digits replaced
// in place (same length): a distinct instance.
func nihCopy(t *testing.T, i int) []byte {
	t.Helper()
	src, err := os.ReadFile(testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	uid := []byte("1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888")
	nu := append(append([]byte(nil), uid[:len(uid)-4]...), []byte(fmt.Sprintf("%04d", i))...)
	return bytes.ReplaceAll(src, uid, nu)
}

// Beyond heatmap.occlusion.max_pending, a film's alert goes out with the
// CAM only and says why, and that film is acknowledged at once.
func TestOcclusionBacklogIsBounded(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := heatConfig(t, srv.ClientURL(), 0)
	cfg.Heatmap.Occlusion.Size, cfg.Heatmap.Occlusion.Stride = 1, 1 // never finishes in this test
	cfg.Heatmap.Occlusion.MaxPending = 1
	cfg.Pipeline.DrainTimeout = time.Second
	h := start(t, cfg)
	drop(t, h.drop, "a.dcm", nihCopy(t, 1))
	drop(t, h.drop, "b.dcm", nihCopy(t, 2))
	testenv.Eventually(t, 60*time.Second, "both alerts", func() bool { return len(alertStream(t, h.url).alerts) == 2 })
	testenv.Eventually(t, 30*time.Second, "the film without occlusion done", func() bool { return count(filepath.Join(h.drop, "done"), isFilm) == 1 })
	pending, skipped := 0, 0
	for _, a := range alertStream(t, h.url).alerts {
		switch {
		case len(a.PendingAttachments) == 1 && len(a.HeatmapNotes) == 0:
			pending++
		case len(a.PendingAttachments) == 0 && len(a.HeatmapNotes) == 1 && strings.Contains(a.HeatmapNotes[0], "max_pending"):
			skipped++
		}
		if len(a.Attachments) != 2 {
			t.Errorf("alert has %d attachments, want the CAM's 2", len(a.Attachments))
		}
	}
	if pending != 1 || skipped != 1 {
		t.Errorf("%d alerts with a pending occlusion map, %d with it skipped; want 1 and 1", pending, skipped)
	}
	h.stop()
	if n := count(filepath.Join(h.drop, ".processing"), isFilm); n != 1 {
		t.Errorf("%d films left in processing, want the one still owed its update", n)
	}
}
