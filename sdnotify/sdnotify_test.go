package sdnotify

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a real unixgram socket, as systemd does for a service.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn, within time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(b[:n])
}

func TestNotifyPathAndAbstractSockets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	abstract := "@triaged-test-" + strings.ReplaceAll(t.Name(), "/", "-") + time.Now().Format("150405.000000")
	for _, sock := range []string{path, abstract} {
		name := sock
		if strings.HasPrefix(name, "@") {
			name = "\x00" + name[1:]
		}
		c := listen(t, name)
		t.Setenv("NOTIFY_SOCKET", sock)
		n := FromEnv()
		if !n.Enabled() {
			t.Fatal("notifier disabled with NOTIFY_SOCKET set")
		}
		if err := n.Notify(Ready, Status("ready;\nline two")); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c, 5*time.Second); got != "READY=1\nSTATUS=ready;; line two" {
			t.Fatalf("%s: got %q", sock, got)
		}
		if err := n.Notify(ReloadingNow()...); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c, 5*time.Second); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
			t.Fatalf("got %q", got)
		}
	}
}

func TestNoSocketIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() {
		t.Fatal("enabled without a socket")
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	var nilN *Notifier
	if err := nilN.Notify(Ready); err != nil || nilN.Enabled() {
		t.Fatal("nil notifier must be a no-op")
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if d, err := WatchdogInterval(); d != 0 || err != nil {
		t.Fatalf("unset: %v %v", d, err)
	}
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d, err := WatchdogInterval(); d != 30*time.Second || err != nil {
		t.Fatalf("30s: %v %v", d, err)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if d, _ := WatchdogInterval(); d != 0 {
		t.Fatalf("for another PID: %v", d)
	}
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("WATCHDOG_USEC", "soon")
	if _, err := WatchdogInterval(); err == nil {
		t.Fatal("no error for a bad value")
	}
}

// The watchdog pings while healthy, goes silent while not, and resumes.
func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c := listen(t, path)
	var healthy atomic.Bool
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	changes := make(chan bool, 10)
	go func() {
		RunWatchdog(ctx, New(path), 40*time.Millisecond, healthy.Load, func(ok bool) { changes <- ok })
		close(done)
	}()
	defer func() { cancel(); <-done }()
	for range 3 {
		if got := recv(t, c, 5*time.Second); got != Watchdog {
			t.Fatalf("got %q", got)
		}
	}
	healthy.Store(false)
	if ok := <-changes; ok {
		t.Fatal("change to healthy reported")
	}
	// Drain what was sent before the change was seen, then expect silence.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	b := make([]byte, 64)
	for {
		if _, err := c.Read(b); err != nil {
			break
		}
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(b); err == nil {
		t.Fatalf("pinged while unhealthy: %q", b[:n])
	}
	healthy.Store(true)
	if got := recv(t, c, 5*time.Second); got != Watchdog {
		t.Fatalf("got %q after recovery", got)
	}
}
