package bus

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"
)

// StoreGuard keeps the embedded server's JetStream storage limit in step
// with the disk under its store. nats-server sizes its own limit once, at
// start, from the free space then: a disk that was nearly full at start
// keeps refusing messages after space is freed, until a restart; and a
// disk that fills later (logs, the drop folder) makes a write fail, after
// which the stream keeps failing until a restart. The guard instead sets
// the account's storage limit, which the server checks before every write
// and which can move both ways at run time, to the store's usage plus the
// free space above a reserve (MinFree), capped at MaxStore.
type StoreGuard struct {
	s       *server.Server
	dir     string
	max     int64
	minFree int64
	// serverMax is the server's own limit (StartEmbedded: MaxStore or the
	// filesystem's size); the account's must stay below it.
	serverMax int64

	mu   sync.Mutex
	last StoreState
}

// StoreState is the store's room at the last check.
type StoreState struct {
	Used  int64 // bytes the JetStream store holds
	Limit int64 // the account limit set: Used + room
	Free  int64 // bytes free on the store's filesystem for unprivileged users
	// Full: less than 1 MiB of room is left.
	Full bool
	At   time.Time
}

// storeHeadroom is the least room that counts as not full: a heatmap or
// a film chunk is up to a few hundred KiB.
const storeHeadroom = 1 << 20

// NewStoreGuard guards the store under dir of server s.
func NewStoreGuard(s *server.Server, dir string, maxStore, minFree int64) *StoreGuard {
	g := &StoreGuard{s: s, dir: dir, max: maxStore, minFree: minFree, serverMax: maxStore}
	if g.serverMax <= 0 {
		g.serverMax = filesystemSize(dir)
	}
	return g
}

// Check measures the disk and sets the limit.
func (g *StoreGuard) Check() (StoreState, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(g.dir, &st); err != nil {
		return StoreState{}, fmt.Errorf("JetStream store %s: free space: %w", g.dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	acc := g.s.GlobalAccount()
	used := int64(acc.JetStreamUsage().Store)
	room := max(free-g.minFree, 0)
	limit := used + room
	if g.max > 0 && limit > g.max {
		limit = g.max
	}
	if g.serverMax > 0 && limit >= g.serverMax {
		limit = g.serverMax - 1 // nats-server refuses an account limit as large as its own
	}
	if err := acc.UpdateJetStreamLimits(map[string]server.JetStreamAccountLimits{
		"": {MaxMemory: -1, MaxStore: limit, MaxStreams: -1, MaxConsumers: -1, MaxAckPending: -1, MemoryMaxStreamBytes: -1, StoreMaxStreamBytes: -1},
	}); err != nil {
		return StoreState{}, fmt.Errorf("JetStream store %s: set the storage limit to %d bytes: %w", g.dir, limit, err)
	}
	s := StoreState{Used: used, Limit: limit, Free: free, Full: limit-used < storeHeadroom, At: time.Now()}
	g.mu.Lock()
	g.last = s
	g.mu.Unlock()
	return s, nil
}

// Last is the state at the last check.
func (g *StoreGuard) Last() StoreState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

// filesystemSize is the size of the filesystem holding dir, or 0.
func filesystemSize(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0
	}
	return int64(st.Blocks) * int64(st.Bsize)
}

// StoreFull reports whether err is JetStream refusing a message for want
// of storage: the account's or the server's limit (the guard's limit on a
// full disk), or a write the store could not complete.
func StoreFull(err error) bool {
	if err == nil {
		return false
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case 10002, // resource limits exceeded for account
			10023, // insufficient resources
			10047, // insufficient storage resources available
			10077: // stream store failed
			return true
		}
	}
	// The object store's chunk writes report the server's answer as text.
	m := err.Error()
	return strings.Contains(m, "resource limits exceeded") || strings.Contains(m, "insufficient resources") ||
		strings.Contains(m, "insufficient storage") || strings.Contains(m, "no space left")
}
