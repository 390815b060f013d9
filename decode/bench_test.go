package decode

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/testenv"
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
