// Package failpoint lets a test stop the real program at a named point, to
// reproduce what cannot be produced on demand otherwise: a stuck disk, a
// hung accelerator. Points are inert unless a test enables them (the
// subprocess tests do so in their TestMain, never through the environment
// of a production binary), and an inert point costs one atomic load.
package failpoint

import (
	"context"
	"sync"
	"sync/atomic"
)

var (
	armed  atomic.Bool
	mu     sync.RWMutex
	points = map[string]func(context.Context){}
)

// Enable makes Inject(ctx, name) call f. Tests only.
func Enable(name string, f func(ctx context.Context)) {
	mu.Lock()
	defer mu.Unlock()
	points[name] = f
	armed.Store(true)
}

// Disable removes a point.
func Disable(name string) {
	mu.Lock()
	defer mu.Unlock()
	delete(points, name)
	armed.Store(len(points) > 0)
}

// Inject runs the function enabled for name, if any.
func Inject(ctx context.Context, name string) {
	if !armed.Load() {
		return
	}
	mu.RLock()
	f := points[name]
	mu.RUnlock()
	if f != nil {
		f(ctx)
	}
}
