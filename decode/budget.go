package decode

import (
	"context"
	"sync"
)

// Budget is the memory that decodes in flight may use together (config
// pipeline.decode_memory). Each decode asks for an estimate computed from
// its already validated header before it allocates pixel buffers, and waits
// while others hold the budget; one that could never fit is refused. The
// estimate counts the compressed or native frame bytes, the decoded
// samples, the codec's working memory and the 8-bit output.
type Budget struct {
	mu    sync.Mutex
	total int64
	used  int64
	freed chan struct{} // closed (and replaced) whenever memory is returned
}

// NewBudget returns a budget of total bytes.
func NewBudget(total int64) *Budget {
	return &Budget{total: total, freed: make(chan struct{})}
}

// InUse is the memory currently held by decodes.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *Budget) acquire(ctx context.Context, n int64) (release func(), err error) {
	if b == nil {
		return func() {}, nil
	}
	if n > b.total {
		return nil, fail(CodeDecodeMemory, "decoding this film needs about %d MiB, more than the whole decode budget of %d MiB", n>>20, b.total>>20)
	}
	for {
		b.mu.Lock()
		if b.used+n <= b.total {
			b.used += n
			b.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					b.mu.Lock()
					b.used -= n
					close(b.freed)
					b.freed = make(chan struct{})
					b.mu.Unlock()
				})
			}, nil
		}
		ch := b.freed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
