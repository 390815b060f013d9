package config

import (
	"errors"
	"strings"
	"testing"
)

func TestServiceKeysValidated(t *testing.T) {
	c, err := Parse([]byte("pipeline: {stall_timeout: 30s}\nhttp: {listen: \"\"}\n"), "/etc/triaged")
	if err != nil || c.Pipeline.StallTimeout.Seconds() != 30 || c.HTTP.Listen != "" {
		t.Fatalf("valid service keys rejected: %v %+v", err, c)
	}
	_, err = Parse([]byte("nats: {publish_timeout: 1m}\npipeline: {stall_timeout: 30s}\nhttp: {listen: \"9464\"}\n"), "/etc/triaged")
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	if ps[0].Path != "http.listen" || ps[1].Path != "pipeline.stall_timeout" || !strings.Contains(ps[1].Msg, "1m10s") {
		t.Fatalf("problems: %v", ps)
	}
	if _, err := Parse([]byte("http: {listen: \"example.org:9464\"}\n"), "/etc"); err == nil {
		t.Fatal("a host name accepted for http.listen")
	}
}
