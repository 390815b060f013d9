package daemon

import (
	"context"
	"sync"
)

// queue is the bounded priority queue between admission (header read) and
// the film workers: STAT films jump routine ones, FIFO within a class, and a
// full queue blocks admission, which in turn stops sources from claiming
// more (backpressure instead of memory growth).
type queue struct {
	slots chan struct{} // one token per free place
	avail chan struct{} // one token per queued job
	mu    sync.Mutex
	byCls [2][]*job // 0 = stat, 1 = routine
	seq   uint64
}

func newQueue(capacity int) *queue {
	q := &queue{slots: make(chan struct{}, capacity), avail: make(chan struct{}, capacity)}
	for range capacity {
		q.slots <- struct{}{}
	}
	return q
}

func (q *queue) push(ctx context.Context, j *job) error {
	select {
	case <-q.slots:
	case <-ctx.Done():
		return ctx.Err()
	}
	q.mu.Lock()
	q.seq++
	j.seq = q.seq
	c := 1
	if j.stat {
		c = 0
	}
	q.byCls[c] = append(q.byCls[c], j)
	q.mu.Unlock()
	q.avail <- struct{}{}
	return nil
}

func (q *queue) pop(ctx context.Context) (*job, error) {
	select {
	case <-q.avail:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	q.mu.Lock()
	var j *job
	for c := range q.byCls {
		if len(q.byCls[c]) > 0 {
			j = q.byCls[c][0]
			q.byCls[c][0] = nil
			q.byCls[c] = q.byCls[c][1:]
			break
		}
	}
	q.mu.Unlock()
	q.slots <- struct{}{}
	return j, nil
}

// drain removes every queued job (at shutdown, to release them).
func (q *queue) drain() []*job {
	var out []*job
	for {
		select {
		case <-q.avail:
			q.mu.Lock()
			for c := range q.byCls {
				if len(q.byCls[c]) > 0 {
					out = append(out, q.byCls[c][0])
					q.byCls[c] = q.byCls[c][1:]
					break
				}
			}
			q.mu.Unlock()
			q.slots <- struct{}{}
		default:
			return out
		}
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.byCls[0]) + len(q.byCls[1])
}
