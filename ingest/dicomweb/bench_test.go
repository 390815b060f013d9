package dicomweb

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/dicomtest"
)

// benchFilm is a full-size film of about 10 MB (2240 x 2240, 16 bits).
var benchFilm = sync.OnceValue(func() []byte {
	return dicomtest.Film("1.2.826.0.1.3680043.10.1234.99.1", 2240, 2240, "")
})

// cpuTime is the process's user+system CPU time so far: on a shared
// machine it measures cost where wall time measures the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// remover deletes files off the measured path, as the drop folder does in
// its own goroutines once it has scored a film, so a long run neither
// fills the disk nor grows the page cache (which on a virtual machine makes
// every write touch fresh memory, a cost the ceiling would not pay alike).
// Removing a 10 MB file inline took 3-4 ms, a fifth of a film's time. A
// path that is a directory has its files removed (the spool's drop folder,
// whose file names the STOW-RS client does not know).
func remover(b *testing.B) chan<- string {
	ch := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range ch {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				ents, _ := os.ReadDir(p)
				for _, e := range ents {
					if e.Type().IsRegular() {
						_ = os.Remove(filepath.Join(p, e.Name()))
					}
				}
				continue
			}
			_ = os.Remove(p)
		}
	}()
	b.Cleanup(func() { close(ch); <-done })
	return ch
}

// runClients runs b.N operations over k goroutines and reports ops/s and
// the p50/p99 of each operation's duration.
func runClients(b *testing.B, k int, op func() error) {
	var next atomic.Int64
	lat := make([][]time.Duration, k)
	var wg sync.WaitGroup
	errs := make(chan error, k)
	b.SetBytes(int64(len(benchFilm())))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for c := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := op(); err != nil {
					errs <- err
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/el.Seconds(), "films/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/film")
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// BenchmarkSTOW posts one ~10 MB film per request over 1 and 4 parallel
// clients; p50/p99 are POST to response, which waits for the durable
// commit. The committed films are removed off the measured path, as the
// drop folder removes them once scored; the ceiling and the spool
// benchmarks remove theirs alike. Run with a fixed count:
//
//	go test -run '^$' -bench . -benchtime 40x ./ingest/dicomweb
func BenchmarkSTOW(b *testing.B) {
	film := benchFilm()
	ctype, body := multipartBody(b, dicomParts(film)...)
	for _, k := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", k), func(b *testing.B) {
			ts := serve(b, Options{}, spool.Options{MinFreeBytes: 1})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: k}}
			rm := remover(b)
			runClients(b, k, func() error {
				req, _ := http.NewRequest(http.MethodPost, ts.url+"/studies", bytes.NewReader(body))
				req.Header.Set("Content-Type", ctype)
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				rm <- ts.dir
				return nil
			})
			st := ts.srv.Stats()
			if st.Durable.Count > 0 {
				b.ReportMetric(st.Durable.Sum/float64(st.Durable.Count)*1000, "mean-durable-ms")
			}
		})
	}
}

// BenchmarkWriteFsync is the disk's ceiling beside BenchmarkSTOW: the same
// film written to a new file in 256 KiB writes (as the server writes to
// the spool) and fsynced, at the same parallelism.
func BenchmarkWriteFsync(b *testing.B) {
	film := benchFilm()
	for _, k := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", k), func(b *testing.B) {
			dir := b.TempDir()
			rm := remover(b)
			var n atomic.Int64
			runClients(b, k, func() error {
				p := filepath.Join(dir, fmt.Sprintf("f%d", n.Add(1)))
				f, err := os.Create(p)
				if err != nil {
					return err
				}
				for off := 0; off < len(film); off += 256 << 10 {
					if _, err := f.Write(film[off:min(len(film), off+256<<10)]); err != nil {
						f.Close()
						return err
					}
				}
				if err := f.Sync(); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				rm <- p
				return nil
			})
		})
	}
}

// BenchmarkSpoolCommit is the spool's durability contract alone, without
// HTTP: write, fsync, rename into the folder, fsync the folder.
func BenchmarkSpoolCommit(b *testing.B) {
	film := benchFilm()
	for _, k := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", k), func(b *testing.B) {
			sp, err := spool.Open(b.TempDir(), spool.Options{MinFreeBytes: 1})
			if err != nil {
				b.Fatal(err)
			}
			rm := remover(b)
			runClients(b, k, func() error {
				w, err := sp.Create("bench", "bench")
				if err != nil {
					return err
				}
				if _, err := w.Write(film); err != nil {
					w.Abort()
					return err
				}
				p, err := w.Commit()
				if err != nil {
					return err
				}
				rm <- p
				return nil
			})
		})
	}
}
