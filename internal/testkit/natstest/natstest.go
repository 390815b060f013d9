// Package natstest gives tests what the NATS intake needs: films published
// the way `triaged submit` publishes them, and an embedded JetStream
// cluster whose nodes can be stopped and restarted.
package natstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	jsingest "github.com/triaged/triaged/ingest/jetstream"
)

// Submit publishes one film to subject: inline, or (object) into bucket
// with a reference as the payload. The message ID is the content hash, as
// `triaged submit` sets it. It returns the content hash.
func Submit(t testing.TB, js jetstream.JetStream, subject, bucket string, data []byte, hdr map[string]string, object bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sum := sha256.Sum256(data)
	id := hex.EncodeToString(sum[:])
	m := nats.NewMsg(subject)
	m.Header.Set(nats.MsgIdHdr, id)
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	m.Data = data
	if object {
		obs, err := js.ObjectStore(ctx, bucket)
		if err != nil {
			t.Fatalf("bucket %s: %v", bucket, err)
		}
		if _, err := obs.PutBytes(ctx, id, data); err != nil {
			t.Fatalf("put object: %v", err)
		}
		m.Data, _ = json.Marshal(jsingest.ObjectRef{Schema: jsingest.ObjectRefSchema, Bucket: bucket, Name: id, Size: int64(len(data)), SHA256: id})
	}
	for attempt := 0; ; attempt++ {
		_, err := js.PublishMsg(ctx, m)
		if err == nil {
			return id
		}
		if attempt == 20 {
			t.Fatalf("publish film: %v", err)
		}
		time.Sleep(250 * time.Millisecond) // a cluster electing a leader
	}
}

// FreePorts reserves n distinct free TCP ports.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// Cluster is an in-process JetStream cluster on fixed ports, so a stopped
// node restarts where it was.
type Cluster struct {
	t     testing.TB
	opts  []*server.Options
	Nodes []*server.Server
}

// StartCluster starts n JetStream nodes routed to one another, each
// storing under its own directory. maxPayload 0 keeps the server default.
func StartCluster(t testing.TB, n int, maxPayload int32) *Cluster {
	t.Helper()
	ports := FreePorts(t, 2*n)
	c := &Cluster{t: t, Nodes: make([]*server.Server, n)}
	var routes []*url.URL
	for i := range n {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[n+i])})
	}
	base := t.TempDir()
	for i := range n {
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   filepath.Join(base, fmt.Sprintf("n%d", i)),
			MaxPayload: maxPayload,
			Cluster:    server.ClusterOpts{Name: "triaged-test", Host: "127.0.0.1", Port: ports[n+i]},
			Routes:     routes,
			NoSigs:     true,
			NoLog:      true,
		})
	}
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, s := range c.Nodes {
			if s != nil {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
	})
	c.WaitReady()
	return c
}

func (c *Cluster) start(i int) {
	o := *c.opts[i]
	o.Routes = append([]*url.URL(nil), c.opts[i].Routes...)
	s, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatalf("node %d: %v", i, err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		c.t.Fatalf("node %d did not start", i)
	}
	c.Nodes[i] = s
}

// WaitReady waits until JetStream has a meta leader and every node is up.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok := true
		for _, s := range c.Nodes {
			if s == nil || !s.JetStreamIsCurrent() {
				ok = false
			}
		}
		if ok {
			for _, s := range c.Nodes {
				if s.JetStreamIsLeader() {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatal("JetStream cluster not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop shuts node i down (its storage stays).
func (c *Cluster) Stop(i int) {
	c.Nodes[i].Shutdown()
	c.Nodes[i].WaitForShutdown()
	c.Nodes[i] = nil
}

// Restart starts node i again on its ports and storage.
func (c *Cluster) Restart(i int) { c.start(i) }

// URLs is the client URL list of every node.
func (c *Cluster) URLs() string {
	var u []string
	for _, o := range c.opts {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(u, ",")
}

// StreamLen is the number of messages in a stream, or an impossible count
// (1<<62) while the stream cannot be read, so a wait for "at least N" keeps
// waiting through a node's restart.
func StreamLen(js jetstream.JetStream, name string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 1 << 62
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 1 << 62
	}
	return info.State.Msgs
}
