package decode

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"

	"github.com/triaged/triaged/codec"
	"github.com/triaged/triaged/internal/dicomtest"
)

var hostileLimits = Limits{MaxFileSize: dicomtest.HostileMaxFileSize}

// Each hostile file is refused with its own reason code, by the header
// read (admission) already where the problem is structural.
func TestHostileFilesHaveReasonCodes(t *testing.T) {
	for _, h := range dicomtest.Hostile() {
		t.Run(h.Name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(h.Data), int64(len(h.Data)), hostileLimits)
			if err == nil {
				t.Fatal("decoded without error")
			}
			if got := CodeOf(err); string(got) != h.Code {
				t.Fatalf("code %s, want %s (%v)", got, h.Code, err)
			}
			if strings.TrimSpace(Reason(err)) == "" {
				t.Fatal("no reason")
			}
		})
	}
}

// allocated runs f and returns the bytes it allocated on the Go heap.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// Files whose elements claim about 4 GB are refused without allocating
// it (nor does a deflate bomb inflate into memory): each decode allocates
// less than 4 MiB in all. The same measurement
// on the bare parser shows it allocating what a claim says (64 MiB here,
// to keep the test light).
func TestGigabyteClaimsAreNotAllocated(t *testing.T) {
	for _, h := range dicomtest.Hostile() {
		if !strings.HasPrefix(h.Name, "claims-") && h.Name != "deflate-bomb.dcm" && h.Name != "tiny-file-huge-frame.dcm" && h.Name != "j2k-tile-bomb.dcm" {
			continue
		}
		var err error
		n := allocated(func() { _, err = Decode(bytes.NewReader(h.Data), int64(len(h.Data)), hostileLimits) })
		if err == nil {
			t.Fatalf("%s decoded", h.Name)
		}
		const limit = 4 << 20
		t.Logf("%s: %s after allocating %d KiB", h.Name, CodeOf(err), n>>10)
		if n > limit {
			t.Errorf("%s: allocated %d bytes", h.Name, n)
		}
	}

	claim := dicomtest.Good()
	claim.Extra = []dicomtest.Elem{{Tag: dicomtest.Tag(0x0009, 0x1010), VR: "OB", Value: make([]byte, 16), Length: 64 << 20}}
	b := claim.Bytes()
	n := allocated(func() { dicom.Parse(bytes.NewReader(b), int64(len(b)), nil) })
	if n < 64<<20 {
		t.Fatalf("the bare parser allocated only %d bytes for a 64 MiB claim: is the threat model stale?", n)
	}
	var err error
	m := allocated(func() { _, err = Decode(bytes.NewReader(b), int64(len(b)), DefaultLimits) })
	if CodeOf(err) != CodeElementLength || m > 1<<20 {
		t.Fatalf("%v after %d bytes", err, m)
	}
	t.Logf("64 MiB claim in a %d-byte file: bare parser allocated %d MiB, Decode %d KiB", len(b), n>>20, m>>10)
}

// A film in a syntax whose library is missing fails with codec_missing,
// naming the package; other syntaxes still decode.
func TestMissingCodecLibrary(t *testing.T) {
	saved := codecs[codecJ2K]
	defer func() { codecs[codecJ2K] = saved }()
	codecs[codecJ2K] = func([]byte, codec.Want, int) (*codec.Frame, error) {
		return nil, &codec.MissingError{Codec: "JPEG 2000", Library: "libopenjp2.so.7", Package: "libopenjp2-7", Err: errSimulated}
	}
	pd := dicomtest.Encapsulated(make([]byte, 64))
	b := dicomtest.Image{TransferSyntax: TSJ2K, Rows: 4, Columns: 4, PixelData: &pd}.Bytes()
	_, err := decodeBytes(t, b)
	if CodeOf(err) != CodeCodecMissing || !strings.Contains(err.Error(), "apt-get install libopenjp2-7") {
		t.Fatalf("got %v", err)
	}
	mustDecode(t, dicomtest.Good().Bytes())
}

type simulated struct{}

func (simulated) Error() string { return "simulated" }

var errSimulated error = simulated{}

// The decode budget is shared: a film that can never fit is refused, and
// decodes that fit run.
func TestDecodeBudget(t *testing.T) {
	b := dicomtest.Good().Bytes()
	lim := DefaultLimits
	lim.Budget = NewBudget(64 << 10)
	if _, err := Decode(bytes.NewReader(b), int64(len(b)), lim); CodeOf(err) != CodeDecodeMemory {
		t.Fatalf("got %v", err)
	}
	lim.Budget = NewBudget(64 << 20)
	for i := 0; i < 3; i++ {
		if _, err := Decode(bytes.NewReader(b), int64(len(b)), lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Budget.InUse() != 0 {
		t.Fatalf("budget still holds %d bytes", lim.Budget.InUse())
	}
}
