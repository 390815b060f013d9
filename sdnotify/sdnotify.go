// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): datagrams of NEWLINE-separated KEY=VALUE assignments on
// the unix socket named by $NOTIFY_SOCKET. It is a few lines, so it lives
// here rather than as a dependency on go-systemd.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// States the daemon reports.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Reloading = "RELOADING=1"
	Watchdog  = "WATCHDOG=1"
)

// Notifier sends notifications to the service manager. The zero value (no
// socket) discards them, so a daemon started outside systemd needs no
// special case.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns a notifier for $NOTIFY_SOCKET. The variable is left in
// the environment: the daemon starts no children that should inherit it,
// and keeping it makes the process's state inspectable.
func FromEnv() *Notifier {
	s := os.Getenv("NOTIFY_SOCKET")
	if s == "" {
		return &Notifier{}
	}
	return New(s)
}

// New returns a notifier for a socket path; a leading '@' names an abstract
// socket.
func New(socket string) *Notifier {
	if socket == "" {
		return &Notifier{}
	}
	name := socket
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	return &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// Enabled reports whether there is a service manager to notify.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Notify sends the assignments as one datagram. Without a socket it does
// nothing and returns nil.
func (n *Notifier) Notify(assignments ...string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: dial %s: %w", printable(n.addr.Name), err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(assignments, "\n"))); err != nil {
		return fmt.Errorf("sd_notify: send to %s: %w", printable(n.addr.Name), err)
	}
	return nil
}

// Status is a STATUS= line (shown by systemctl status); newlines would end
// the assignment, so they are replaced.
func Status(s string) string {
	return "STATUS=" + strings.NewReplacer("\n", "; ", "\r", " ").Replace(s)
}

// ReloadingNow is RELOADING=1 with the MONOTONIC_USEC systemd 253+ requires
// for Type=notify-reload; older versions ignore the extra field.
func ReloadingNow() []string {
	return []string{Reloading, "MONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10)}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}

func printable(name string) string { return strings.Replace(name, "\x00", "@", 1) }

// WatchdogInterval returns the watchdog timeout systemd expects pings
// within ($WATCHDOG_USEC), or 0 when the watchdog is off or meant for
// another process ($WATCHDOG_PID names a different PID).
func WatchdogInterval() (time.Duration, error) {
	us := os.Getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, nil
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("WATCHDOG_PID %q: %w", p, err)
		}
		if pid != os.Getpid() {
			return 0, nil
		}
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC %q is not a positive number of microseconds", us)
	}
	return time.Duration(n) * time.Microsecond, nil
}

// RunWatchdog pings the watchdog every interval/2 for as long as healthy()
// holds, until ctx ends. It does not ping on a timer alone: when healthy()
// turns false (the pipeline is wedged) the pings stop, systemd's timeout
// expires and it kills and restarts the service. onChange is called with
// the health each time it changes (for logging).
func RunWatchdog(ctx context.Context, n *Notifier, interval time.Duration, healthy func() bool, onChange func(bool)) error {
	if !n.Enabled() || interval <= 0 {
		return nil
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	was := true
	for {
		ok := healthy()
		if ok != was && onChange != nil {
			onChange(ok)
		}
		was = ok
		if ok {
			// A lost ping is not fatal: the next one may get through, and
			// systemd tolerates a whole interval without one.
			_ = n.Notify(Watchdog)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
