package decode

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// BenchmarkDecodeShared decodes each real film of the shared data set
// (pre-scan, header, codec, display pipeline), from memory.
func BenchmarkDecodeShared(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(testenv.DICOM(b, ""), "*", "*.dcm"))
	for _, p := range files {
		if strings.Contains(p, "pydicom_tiny") {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(filepath.Base(p), ".dcm"), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if _, err := Decode(bytes.NewReader(data), int64(len(data)), DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadHeader is the admission cost: pre-scan and header parse.
func BenchmarkReadHeader(b *testing.B) {
	data, err := os.ReadFile(testenv.DICOM(b, "derived/RG1_chest_CR_mono1_jpegLS_lossless.dcm"))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := ReadHeader(bytes.NewReader(data), int64(len(data)), DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeFilms decodes the bench's full-size films (make films),
// one of each transfer syntax: header (admission's pre-scan and parse), the
// whole decode with its split reported (frame-ms: codec or native samples,
// render-ms: display pipeline), and JPEG 2000 on one thread.
func BenchmarkDecodeFilms(b *testing.B) {
	dir := testenv.Films(b)
	seen := map[string]bool{}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
	for _, p := range paths {
		syn := strings.TrimSuffix(p[strings.LastIndexByte(p, '-')+1:], ".dcm")
		if seen[syn] {
			continue
		}
		seen[syn] = true
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(syn+"/header", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := ReadHeader(bytes.NewReader(data), int64(len(data)), DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
		run := func(name string, lim Limits) {
			b.Run(syn+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				var fr, rd float64
				for i := 0; i < b.N; i++ {
					f, err := Decode(bytes.NewReader(data), int64(len(data)), lim)
					if err != nil {
						b.Fatal(err)
					}
					fr += f.Timings.Frame.Seconds() * 1000
					rd += f.Timings.Render.Seconds() * 1000
				}
				b.ReportMetric(fr/float64(b.N), "frame-ms")
				b.ReportMetric(rd/float64(b.N), "render-ms")
			})
		}
		run("decode", DefaultLimits)
		if strings.HasPrefix(syn, "j2k") {
			one := DefaultLimits
			one.CodecThreads = 1
			run("decode-1thread", one)
		}
	}
}
