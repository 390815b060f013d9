package testenv

import (
	"context"
	"net"
	"testing"
	"time"
)

// Serve runs a server's Serve(ctx, ln) on a new loopback listener until
// the test ends, and then checks that Serve returned nil within 15 s of its
// context ending (a server that hangs on shutdown fails the test instead
// of leaking). It returns the listener, for its address.
func Serve(t testing.TB, serve func(context.Context, net.Listener) error) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return ln
}

// FreePort returns a TCP port on loopback that was free a moment ago, for
// programs that must be told a port number (a daemon subprocess, Orthanc,
// Alertmanager). Prefer Serve, or listening on :0, where the code under
// test takes a listener.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
