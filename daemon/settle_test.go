package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// A film whose result is stored but whose move to done/ or failed/ fails
// (the folder was removed under the daemon; a full disk is the same error
// path) is not stranded in .processing until a restart: it is retried with
// backoff and settles, once, as soon as the folder is back. The error the
// operator sees names no file.
func TestUnsettledFilmsAreRetriedUntilTheyCanBeSettled(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	h := start(t, newConfig(t, srv.ClientURL()))
	done, failed := filepath.Join(h.drop, "done"), filepath.Join(h.drop, "failed")
	if err := os.Remove(done); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(failed); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	drop(t, h.drop, "patient-name-canary.dcm", b)
	drop(t, h.drop, "canary-notes.txt", []byte("not a film\n"))
	// Both outputs are stored (the result, the error event) while neither
	// input can be moved.
	testenv.Eventually(t, 60*time.Second, "result and error event stored", func() bool {
		return len(results(t, h.url)) == 1 && len(events(t, h.url)) == 1
	})
	time.Sleep(2 * time.Second) // at least one failed attempt to settle each
	if n := count(filepath.Join(h.drop, ".processing"), isFilm); n != 2 {
		t.Fatalf("%d films in processing while done/ and failed/ are missing, want 2", n)
	}
	if err := os.Mkdir(done, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(failed, 0o750); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "both films settled after the folders came back", func() bool {
		return count(done, isFilm) == 1 && count(failed, isFilm) == 1
	})
	for uid, rs := range results(t, h.url) {
		if len(rs) != 1 {
			t.Errorf("instance %s has %d results after the retries, want 1", uid, len(rs))
		}
	}
	if n := count(filepath.Join(h.drop, ".processing"), isFilm); n != 0 {
		t.Errorf("%d films left in processing", n)
	}
	for _, e := range events(t, h.url) {
		if strings.Contains(e.Reason, "canary") {
			t.Errorf("an error event's reason carries the file name: %q", e.Reason)
		}
	}
}
