package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// progress draws a bar on stderr when it is a terminal, and nothing
// otherwise (logs and pipes get the JSON lines and errors only).
type progress struct {
	mu          sync.Mutex
	w           io.Writer
	tty         bool
	total, n    int
	failed      int
	bytes       int64
	start, last time.Time
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		p.tty = err == nil
	}
	return p
}

func (p *progress) add(size int64, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.bytes += size
	if failed {
		p.failed++
	}
	if p.tty && (time.Since(p.last) > 100*time.Millisecond || p.n == p.total) {
		p.last = time.Now()
		p.draw()
	}
}

func (p *progress) draw() {
	const width = 30
	fill := width * p.n / max(p.total, 1)
	var b bytes.Buffer
	fmt.Fprintf(&b, "\r[%s%s] %d/%d films", strings.Repeat("#", fill), strings.Repeat(".", width-fill), p.n, p.total)
	if p.bytes > 0 {
		fmt.Fprintf(&b, ", %.1f MB", float64(p.bytes)/1e6)
	}
	if p.failed > 0 {
		fmt.Fprintf(&b, ", %d failed", p.failed)
	}
	if s := time.Since(p.start).Seconds(); s > 0 && p.bytes > 0 {
		fmt.Fprintf(&b, ", %.1f MB/s", float64(p.bytes)/1e6/s)
	} else if s > 0 {
		fmt.Fprintf(&b, ", %.1f films/s", float64(p.n)/s)
	}
	b.WriteString("\x1b[K")
	p.w.Write(b.Bytes())
}

func (p *progress) clear() {
	if p.tty {
		io.WriteString(p.w, "\r\x1b[K")
	}
}

func (p *progress) done() {
	if p.tty {
		io.WriteString(p.w, "\n")
	}
}

// counter adapts the bar to a done/total callback (eval, calibrate).
func (p *progress) counter() func(done, total int) {
	if !p.tty {
		return nil
	}
	return func(done, total int) {
		p.add(0, false)
		if done == total {
			p.done()
		}
	}
}
