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
	"testing"
	"time"

	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/dicomtest"
)

// benchFilm is a full-size film of about 10 MB (2240 x 2240, 16 bits).
var benchFilm = sync.OnceValue(func() []byte {
	return dicomtest.Film("1.2.826.0.1.3680043.10.1234.99.1", 2240, 2240, "")
})

// runClients runs b.N operations over k goroutines and reports ops/s and
// the p50/p99 of each operation's duration.
func runClients(b *testing.B, k int, op func() error) {
	var next atomic.Int64
	lat := make([][]time.Duration, k)
	var wg sync.WaitGroup
	errs := make(chan error, k)
	b.SetBytes(int64(len(benchFilm())))
	b.ResetTimer()
	start := time.Now()
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
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// BenchmarkSTOW posts one ~10 MB film per request over 1 and 4 parallel
// clients; p50/p99 are POST to response, which waits for the durable
// commit. Run with a fixed count, the films stay on disk until the end:
//
//	go test -run '^$' -bench . -benchtime 40x ./ingest/dicomweb
func BenchmarkSTOW(b *testing.B) {
	film := benchFilm()
	ctype, body := multipartBody(b, dicomParts(film)...)
	for _, k := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", k), func(b *testing.B) {
			ts := serve(b, Options{}, spool.Options{MinFreeBytes: 1})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: k}}
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
// film written to a new file and fsynced, at the same parallelism.
func BenchmarkWriteFsync(b *testing.B) {
	film := benchFilm()
	for _, k := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", k), func(b *testing.B) {
			dir := b.TempDir()
			var n atomic.Int64
			runClients(b, k, func() error {
				f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%d", n.Add(1))))
				if err != nil {
					return err
				}
				if _, err := f.Write(film); err != nil {
					f.Close()
					return err
				}
				if err := f.Sync(); err != nil {
					f.Close()
					return err
				}
				return f.Close()
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
			runClients(b, k, func() error {
				w, err := sp.Create("bench", "bench")
				if err != nil {
					return err
				}
				if _, err := w.Write(film); err != nil {
					w.Abort()
					return err
				}
				_, err = w.Commit()
				return err
			})
		})
	}
}
