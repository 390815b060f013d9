package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

func startLogged(t *testing.T, cfg *config.Config, opts ...daemon.Option) (*daemon.Daemon, *lockedBuffer) {
	t.Helper()
	buf := &lockedBuffer{}
	log := zerolog.New(zerolog.MultiLevelWriter(buf, zerolog.NewTestWriter(t))).Level(zerolog.InfoLevel)
	d, err := daemon.New(cfg, log, "test", opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx); d.Close() }()
	select {
	case <-d.Ready:
	case err := <-done:
		t.Fatalf("daemon stopped before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return d, buf
}

func readiness(d *daemon.Daemon) string { return strings.Join(d.Readiness(), "\n") }

// A full disk under the drop folder: every film whose output is stored is
// kept where it is (a film whose quarantine reason file cannot be written
// stays in .processing), the daemon keeps running and says so (log without
// file names, /readyz, triaged_disk_full), and once space is freed the
// films settle by themselves, without a restart, each output stored once.
func TestFullDropFolderDiskIsReportedAndRecoveredWithoutRestart(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	mnt := testenv.Tmpfs(t, "8m")
	cfg.Ingest.Folders[0].Path = filepath.Join(mnt, "incoming")
	d, logs := startLogged(t, cfg)
	in := cfg.Ingest.Folders[0].Path

	// The films are written under ignored names, the disk is filled, and
	// the films are renamed into place: a sender that wrote them just
	// before the disk filled up.
	stage := map[string][]byte{
		"canary-good-1.dcm": dicomtest.Film("1.2.826.0.1.3680043.10.1234.55.1", 64, 64, ""),
		"canary-good-2.dcm": dicomtest.Film("1.2.826.0.1.3680043.10.1234.55.2", 64, 64, ""),
		"canary-notes.txt":  []byte("not a film\n"),
	}
	for n, b := range stage {
		if err := os.WriteFile(filepath.Join(in, "."+n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	filler := filepath.Join(mnt, "filler")
	testenv.FillDisk(t, filler)
	testenv.Eventually(t, 10*time.Second, "the full disk in /readyz", func() bool {
		return strings.Contains(readiness(d), "disk full under the folder "+in)
	})
	if v := diskMetric(t, d, "triaged_disk_full", "place", "folder", "path", in); v != 1 {
		t.Errorf("triaged_disk_full{place=folder} = %v, want 1", v)
	}
	for n := range stage {
		if err := os.Rename(filepath.Join(in, "."+n), filepath.Join(in, n)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, "both results and the error event stored", func() bool {
		return len(results(t, srv.ClientURL())) == 2 && len(events(t, srv.ClientURL())) == 1
	})
	// The good films are renamed to done/ (no space needed); the bad one
	// cannot get its reason file and stays in processing, retried.
	testenv.Eventually(t, 30*time.Second, "good films in done/", func() bool {
		return count(filepath.Join(in, "done"), isFilm) == 2
	})
	// Long enough for the retry backoff to grow past what the test waits
	// after space returns: the film must be retried when space returns,
	// not when its backoff ends.
	time.Sleep(16 * time.Second)
	if n := count(filepath.Join(in, ".processing"), isFilm); n != 1 {
		t.Errorf("%d films in processing while the disk is full, want 1 (the one whose reason file cannot be written)", n)
	}
	if n := count(filepath.Join(in, "failed"), func(string) bool { return true }); n != 0 {
		t.Errorf("failed/ holds %d files on a full disk", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 8*time.Second, "the bad file quarantined once space returned", func() bool {
		return count(filepath.Join(in, "failed"), isFilm) == 1 && count(filepath.Join(in, ".processing"), isFilm) == 0
	})
	testenv.Eventually(t, 10*time.Second, "/readyz without the full disk", func() bool {
		return !strings.Contains(readiness(d), "disk full")
	})
	if v := diskMetric(t, d, "triaged_disk_full", "place", "folder", "path", in); v != 0 {
		t.Errorf("triaged_disk_full{place=folder} = %v after space returned, want 0", v)
	}
	for uid, rs := range results(t, srv.ClientURL()) {
		if len(rs) != 1 {
			t.Errorf("instance %s has %d results, want 1", uid, len(rs))
		}
	}
	log := logs.String()
	if !strings.Contains(log, "the drop folder's disk is full") || !strings.Contains(log, "space is back") {
		t.Errorf("the log does not report the full disk and its end:\n%s", log)
	}
	if strings.Contains(log, "canary") {
		t.Errorf("a log line names a dropped file:\n%s", log)
	}
}

// diskMetric is the value of one series of a daemon metric with the given
// labels (name=value pairs), or -1 when there is none.
func diskMetric(t *testing.T, d *daemon.Daemon, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := d.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// A full disk under the embedded JetStream store: results are refused
// cleanly, the films are not acknowledged (they stay in .processing and are
// retried), the daemon says so (/readyz, triaged_store_refusing,
// triaged_disk_full{place="store"}, the log), and once space is freed the
// waiting films are scored and stored once each, without a restart.
func TestFullJetStreamStoreDiskIsReportedAndRecoveredWithoutRestart(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	mnt := testenv.Tmpfs(t, "32m")
	cfg := newConfig(t, "")
	cfg.NATS.Embedded.Listen = fmt.Sprintf("127.0.0.1:%d", natstest.FreePorts(t, 1)[0])
	cfg.NATS.Embedded.StoreDir = filepath.Join(mnt, "nats")
	cfg.NATS.Embedded.MinFree = 2 << 20
	d, logs := startLogged(t, cfg)
	url := "nats://" + cfg.NATS.Embedded.Listen
	in := cfg.Ingest.Folders[0].Path
	film := func(i int) []byte {
		return dicomtest.Film(fmt.Sprintf("1.2.826.0.1.3680043.10.1234.56.%d", i), 64, 64, "")
	}
	drop(t, in, "first.dcm", film(1))
	testenv.Eventually(t, 60*time.Second, "the first result stored", func() bool {
		return len(results(t, url)) == 1
	})

	// Another writer fills the store's disk.
	filler := filepath.Join(mnt, "filler")
	testenv.FillDisk(t, filler)
	testenv.Eventually(t, 10*time.Second, "the store's full disk in /readyz", func() bool {
		return strings.Contains(readiness(d), "disk full under the store")
	})
	drop(t, in, "second.dcm", film(2))
	drop(t, in, "third.dcm", film(3))
	testenv.Eventually(t, 30*time.Second, "JetStream's refusal in /readyz", func() bool {
		return strings.Contains(readiness(d), "JetStream refuses to store results for want of storage")
	})
	if v := diskMetric(t, d, "triaged_store_refusing"); v != 1 {
		t.Errorf("triaged_store_refusing = %v, want 1", v)
	}
	if v := diskMetric(t, d, "triaged_disk_full", "place", "store"); v != 1 {
		t.Errorf("triaged_disk_full{place=store} = %v, want 1", v)
	}
	time.Sleep(2 * time.Second)
	if n := count(filepath.Join(in, ".processing"), isFilm); n != 2 {
		t.Errorf("%d films in processing while the store is full, want 2 (not acknowledged)", n)
	}
	if n := count(filepath.Join(in, "done"), isFilm); n != 1 {
		t.Errorf("%d films in done/ while the store is full, want 1", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the waiting films scored once space returned", func() bool {
		return count(filepath.Join(in, "done"), isFilm) == 3
	})
	rs := results(t, url)
	if len(rs) != 3 {
		t.Errorf("results for %d instances, want 3", len(rs))
	}
	for uid, r := range rs {
		if len(r) != 1 {
			t.Errorf("instance %s has %d results, want 1", uid, len(r))
		}
	}
	testenv.Eventually(t, 10*time.Second, "/readyz without the full store", func() bool {
		r := readiness(d)
		return !strings.Contains(r, "disk full") && !strings.Contains(r, "JetStream refuses")
	})
	if v := diskMetric(t, d, "triaged_store_refusing"); v != 0 {
		t.Errorf("triaged_store_refusing = %v after space returned, want 0", v)
	}
	if log := logs.String(); !strings.Contains(log, "the JetStream store's disk is full") {
		t.Errorf("the log does not report the store's full disk:\n%s", log)
	}
}

// A full disk under the NATS intake's spool: object-store films cannot be
// fetched, so they are given back to JetStream without counting as
// deliveries (none is dead-lettered however long the disk stays full), the
// daemon says so (/readyz, triaged_disk_full{place="spool"}), and once space
// is freed every film is scored once, without a restart.
func TestFullSpoolDiskLosesNoFilmAndRecoversWithoutRestart(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := natsConfig(t, srv.ClientURL())
	cfg.Ingest.NATS.MaxDeliver = 2
	cfg.Ingest.NATS.SpoolDir = testenv.Tmpfs(t, "8m")
	d, _ := startLogged(t, cfg)
	filler := filepath.Join(cfg.Ingest.NATS.SpoolDir, "filler")
	testenv.FillDisk(t, filler)
	testenv.Eventually(t, 10*time.Second, "the spool's full disk in /readyz", func() bool {
		return strings.Contains(readiness(d), "disk full under the spool")
	})
	js := jsClient(t, srv.ClientURL())
	for i := range 3 {
		natstest.Submit(t, js, ingestSubject, filmBucket, dicomtest.Film(synthUID(900+i), 256, 256, ""), nil, true)
	}
	time.Sleep(8 * time.Second) // several local retries, more than max_deliver
	if n := len(results(t, srv.ClientURL())); n != 0 {
		t.Fatalf("%d results while the spool's disk is full", n)
	}
	if v := diskMetric(t, d, "triaged_disk_full", "place", "spool"); v != 1 {
		t.Errorf("triaged_disk_full{place=spool} = %v, want 1", v)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "every film scored once space returned", func() bool {
		return len(results(t, srv.ClientURL())) == 3
	})
	for uid, rs := range results(t, srv.ClientURL()) {
		if len(rs) != 1 {
			t.Errorf("instance %s has %d results, want 1", uid, len(rs))
		}
	}
	if n := len(events(t, srv.ClientURL())); n != 0 {
		t.Errorf("%d error events (a film dead-lettered for the full spool?)", n)
	}
}
