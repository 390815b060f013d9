package daemon

import (
	"context"
	"testing"
	"time"
)

func TestQueueServesStatFirstThenFIFO(t *testing.T) {
	q := newQueue(4)
	ctx := context.Background()
	for _, j := range []*job{{stat: false}, {stat: false}, {stat: true}} {
		if err := q.push(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	var order []bool
	var seqs []uint64
	for range 3 {
		j, err := q.pop(ctx)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, j.stat)
		seqs = append(seqs, j.seq)
	}
	if !order[0] || order[1] || order[2] || seqs[1] > seqs[2] {
		t.Fatalf("order stat=%v seq=%v", order, seqs)
	}
}

func TestQueueBlocksWhenFull(t *testing.T) {
	q := newQueue(1)
	ctx := context.Background()
	q.push(ctx, &job{})
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := q.push(tctx, &job{}); err == nil {
		t.Fatal("push into a full queue did not block")
	}
	if got := q.drain(); len(got) != 1 || q.len() != 0 {
		t.Fatalf("drain returned %d", len(got))
	}
}
