package config

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// publishBackoff is the longest pause between two attempts to publish
// (daemon.durably); each attempt counts as progress for the stall check.
const publishBackoff = 5 * time.Second

// validateService checks the keys that running as a system service adds:
// the HTTP endpoints and the stall (watchdog) timeout.
func (c *Config) validateService() Problems {
	var ps Problems
	add := func(path string, v any, msg string, args ...any) {
		ps = append(ps, Problem{Path: path, Value: fmt.Sprint(v), Msg: fmt.Sprintf(msg, args...)})
	}
	if c.HTTP.Listen != "" {
		host, port, err := net.SplitHostPort(c.HTTP.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			add("http.listen", c.HTTP.Listen, "must be host:port (for example 127.0.0.1:9464), or empty to turn the HTTP endpoints off")
		} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			add("http.listen", c.HTTP.Listen, "host must be an IP address or localhost")
		}
	}
	// A film waiting for NATS makes an attempt at least every publish
	// timeout plus backoff; a stall timeout below that would call an outage
	// a wedge and have systemd restart a daemon that is merely waiting.
	if least := c.NATS.PublishTimeout + publishBackoff + 5*time.Second; c.Pipeline.StallTimeout < least {
		add("pipeline.stall_timeout", c.Pipeline.StallTimeout, "must be at least nats.publish_timeout + 10s (%s)", least)
	}
	return ps
}
