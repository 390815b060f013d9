package dimse

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	ul "github.com/triaged/triaged/dimse"
	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/dicomtest"
)

// benchFilm is a full-size film of about 10 MB (2236 x 2236, 16 bits).
var benchFilm = sync.OnceValue(func() []byte {
	f := dicomtest.Film("1.2.826.0.1.3680043.10.1234.500", 2236, 2236, "")
	return f
})

// remover deletes files off the measured path, in both benchmarks alike.
func remover() chan<- string {
	ch := make(chan string, 1024)
	go func() {
		for p := range ch {
			os.Remove(p)
		}
	}()
	return ch
}

// cpuTime is the process's user+system CPU time so far: on a shared
// machine it measures cost where wall time measures the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

// BenchmarkReceive measures films/s received and made durable over 1 and
// 4 parallel associations (our SCU sending), with time-to-durable (C-STORE
// request in, film fsynced and renamed) p50 and p99.
func BenchmarkReceive(b *testing.B) {
	for _, par := range []int{1, 4} {
		b.Run(fmt.Sprintf("assoc=%d", par), func(b *testing.B) {
			ds := dataSet(b, benchFilm())
			dir := b.TempDir()
			sp, err := spool.Open(dir, spool.Options{MinFreeBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			var durable []time.Duration
			rm := remover()
			defer close(rm)
			srv, err := New(Options{AETitle: "TRIAGED", Spool: sp, Log: zerolog.Nop(), OnInstance: func(in Instance) {
				mu.Lock()
				durable = append(durable, in.Durable)
				mu.Unlock()
				// Keep the disk from filling, as the drop folder would.
				rm <- in.Path
			}})
			if err != nil {
				b.Fatal(err)
			}
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, ln) }()
			defer func() { cancel(); <-done }()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.SetBytes(int64(len(ds)))
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range par {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, err := ul.Dial(context.Background(), ln.Addr().String(), ul.SCUOptions{CallingAE: "BENCH", CalledAE: "TRIAGED",
						Contexts: []ul.PresentationContext{{Abstract: "1.2.840.10008.5.1.4.1.1.1.1", Transfer: []string{dicomtest.ExplicitLE}}}})
					if err != nil {
						b.Error(err)
						return
					}
					defer a.Release()
					for left.Add(-1) >= 0 {
						rsp, err := a.Store("1.2.840.10008.5.1.4.1.1.1.1", "1.2.826.0.1.3680043.10.1234.500", dicomtest.ExplicitLE, bytesReader(ds))
						if err != nil || rsp.Status != 0 {
							b.Errorf("C-STORE: %04X %v", rsp.Status, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "films/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/film")
			b.ReportMetric(float64(percentile(durable, 0.5).Microseconds())/1000, "p50-durable-ms")
			b.ReportMetric(float64(percentile(durable, 0.99).Microseconds())/1000, "p99-durable-ms")
		})
	}
}

// BenchmarkWriteFsyncBaseline is the disk's ceiling beside BenchmarkReceive:
// plain write of the same ~10 MB, fsync, close, at the same parallelism,
// into the same kind of directory.
func BenchmarkWriteFsyncBaseline(b *testing.B) {
	for _, par := range []int{1, 4} {
		b.Run(fmt.Sprintf("par=%d", par), func(b *testing.B) {
			film := benchFilm()
			dir := b.TempDir()
			var left, seq atomic.Int64
			left.Store(int64(b.N))
			var mu sync.Mutex
			var lat []time.Duration
			rm := remover()
			defer close(rm)
			var wg sync.WaitGroup
			b.SetBytes(int64(len(film)))
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range par {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						t0 := time.Now()
						p := filepath.Join(dir, fmt.Sprintf("f%d", seq.Add(1)))
						f, err := os.Create(p)
						if err != nil {
							b.Error(err)
							return
						}
						for off := 0; off < len(film); off += 256 << 10 {
							f.Write(film[off:min(len(film), off+256<<10)])
						}
						if err := f.Sync(); err != nil {
							b.Error(err)
						}
						f.Close()
						mu.Lock()
						lat = append(lat, time.Since(t0))
						mu.Unlock()
						rm <- p
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "films/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/film")
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-durable-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-durable-ms")
		})
	}
}

// BenchmarkSpoolBaseline is the spool alone (write, fsync, rename, fsync
// the folder), no network: what BenchmarkReceive can at best reach.
func BenchmarkSpoolBaseline(b *testing.B) {
	for _, par := range []int{1, 4} {
		b.Run(fmt.Sprintf("par=%d", par), func(b *testing.B) {
			film := benchFilm()
			sp, err := spool.Open(b.TempDir(), spool.Options{MinFreeBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			var left atomic.Int64
			left.Store(int64(b.N))
			var mu sync.Mutex
			var lat []time.Duration
			rm := remover()
			defer close(rm)
			var wg sync.WaitGroup
			b.SetBytes(int64(len(film)))
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range par {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						t0 := time.Now()
						w, err := sp.Create("bench", "BENCH")
						if err != nil {
							b.Error(err)
							return
						}
						for off := 0; off < len(film); off += 32 << 10 {
							w.Write(film[off:min(len(film), off+32<<10)])
						}
						p, err := w.Commit()
						if err != nil {
							b.Error(err)
							return
						}
						mu.Lock()
						lat = append(lat, time.Since(t0))
						mu.Unlock()
						rm <- p
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "films/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/film")
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-durable-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-durable-ms")
		})
	}
}
