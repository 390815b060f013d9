package decode

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

var update = flag.Bool("update", false, "rewrite decode/testdata/corpus.golden from this run")

const corpusGolden = "testdata/corpus.golden"

// Per-file bounds of the corpus test. The slowest file of the corpus takes
// well under a second without the race detector; the allocation bound is
// the decoder's own worst case for the file (a copy of the file, the
// parser's header allocations, the frame in 16 bits with its conversions)
// with a wide margin, so only a runaway allocation trips it.
const corpusTimeLimit = 60 * time.Second

func corpusAllocBound(size int64, h *Header) uint64 {
	b := 8*uint64(size) + 64<<20
	if h != nil && h.Rows > 0 && h.Columns > 0 {
		b += 32 * uint64(h.Rows) * uint64(h.Columns) * uint64(max(1, h.SamplesPerPixel))
	}
	return b
}

// corpusRSSLimit bounds the test process's resident set while it decodes
// any one corpus file: the daemon's default decode budget.
const corpusRSSLimit = 1 << 30

// resetPeakRSS resets the kernel's peak resident set (VmHWM) of this
// process, so that peakRSS measures one file's decode; where the kernel
// does not allow it, peakRSS keeps the process's peak so far.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is VmHWM in bytes, 0 where /proc is not there.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb uint64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}

// outcome is one corpus file's result, as the golden file records it.
type outcome struct {
	path string // relative to dicom-corpora
	line string
}

// Every file of ../shared/data/dicom-corpora (public test files of other
// DICOM toolkits: every modality, syntax and oddity they met) ends in a
// decoded film or in a refusal with a reason code: never a recovered
// panic, an error without a code, a hang or a runaway allocation (Go heap
// per file, and the process's peak resident set per file, C codecs
// included). Lossless
// decodes equal a reference decoder's (dcmtk, OpenJPEG's opj_decompress,
// OpenJPH's ojph_expand) pixel for pixel where that reference decodes the
// file. The outcomes are kept in testdata/corpus.golden, so that a change
// of outcome is a visible diff: go test ./decode -run TestCorpus -update
// rewrites it.
func TestCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("the corpus test decodes 289 files and runs reference decoders: skipped under -short")
	}
	root := filepath.Join(testenv.SharedData(t), "dicom-corpora")
	var files []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && filepath.Dir(p) != root {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Skipf("no files under %s", root)
	}
	sort.Strings(files)
	var out []outcome
	counts := map[string]int{}
	refs := map[string]int{}
	var peak uint64
	var peakFile string
	for _, p := range files {
		rel, _ := filepath.Rel(root, p)
		resetPeakRSS()
		line, film := corpusOne(t, rel, p)
		if rss := peakRSS(); rss > peak {
			peak, peakFile = rss, rel
		}
		out = append(out, outcome{rel, line})
		counts[strings.Fields(line)[0]]++
		if film != nil {
			refs[corpusReference(t, rel, p, film)]++
		}
	}
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var summary []string
	for _, k := range keys {
		summary = append(summary, fmt.Sprintf("%s %d", k, counts[k]))
	}
	t.Logf("%d files: %s", len(files), strings.Join(summary, ", "))
	t.Logf("reference comparisons: %v", refs)
	if peak > 0 {
		// The whole test process, Go and C heaps (codecs) together,
		// while decoding one file; the race detector's shadow memory
		// included.
		t.Logf("peak resident set while decoding one file: %d MiB (%s)", peak>>20, peakFile)
		if peak > corpusRSSLimit {
			t.Errorf("peak resident set %d MiB while decoding %s (limit %d MiB)", peak>>20, peakFile, corpusRSSLimit>>20)
		}
	}

	var b strings.Builder
	b.WriteString("# decode.TestCorpus: each file of ../shared/data/dicom-corpora and its outcome\n")
	b.WriteString("# (decoded, with modality and display path, or the reason code). Regenerate: go test ./decode -run TestCorpus -update\n")
	for _, o := range out {
		fmt.Fprintf(&b, "%s\t%s\n", o.path, o.line)
	}
	if *update {
		if err := os.WriteFile(corpusGolden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(corpusGolden)
	if err != nil {
		t.Fatalf("%v (run go test ./decode -run TestCorpus -update to create it)", err)
	}
	if d := lineDiff(string(want), b.String()); d != "" {
		t.Errorf("outcomes differ from %s (- golden, + now; rerun with -update if the change is right):\n%s", corpusGolden, d)
	}
}

// corpusOne decodes one file within the bounds and returns its golden line.
func corpusOne(t *testing.T, rel, path string) (string, *Film) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		film  *Film
		err   error
		alloc uint64
	}
	done := make(chan result, 1)
	go func() {
		before := heapAllocs()
		film, err := Decode(bytes.NewReader(data), int64(len(data)), DefaultLimits)
		done <- result{film, err, heapAllocs() - before}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(corpusTimeLimit):
		t.Fatalf("%s: decode still running after %s", rel, corpusTimeLimit)
	}
	var h *Header
	if r.film != nil {
		h = r.film.Header
	}
	if bound := corpusAllocBound(int64(len(data)), h); r.alloc > bound {
		t.Errorf("%s: decode allocated %d bytes (bound %d)", rel, r.alloc, bound)
	}
	if r.err != nil {
		switch {
		case Panicked(r.err):
			t.Errorf("%s: recovered panic: %v", rel, r.err)
		case CodeOf(r.err) == CodeInternal:
			t.Errorf("%s: error without a reason code: %v", rel, r.err)
		}
		return string(CodeOf(r.err)), nil
	}
	h = r.film.Header
	mod := h.Modality
	if mod == "" {
		mod = "-"
	}
	return fmt.Sprintf("decoded\t%s\t%s %dx%d\t%s", mod, h.Photometric, h.Columns, h.Rows, r.film.Display), r.film
}

// corpusReference compares a lossless decode with a reference decoder's and
// returns how (for the summary); a reference that cannot decode the file
// is noted, not a failure: the corpus holds files other toolkits refuse.
func corpusReference(t *testing.T, rel, path string, film *Film) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "ref.dcm")
	var name string
	var args []string
	l := film.Header.layout
	switch ts := film.Header.TransferSyntax; {
	case l.syntax.codec == codecNative || l.syntax.codec == codecRaw:
		name, args = "dcmconv", []string{"+te", path, out}
	case ts == TSRLE:
		name, args = "dcmdrle", []string{path, out}
	case ts == TSJPEGLossless || ts == TSJPEGLosslessSV:
		name, args = "dcmdjpeg", []string{path, out}
	case ts == TSJPEGLSLossless:
		name, args = "dcmdjpls", []string{path, out}
	case ts == TSJ2KLossless:
		return corpusCodestreamReference(t, rel, path, film, "opj_decompress", "libopenjp2-tools", ".j2k",
			func(in, pnm string) []string { return []string{"-quiet", "-i", in, "-o", pnm} })
	case ts == TSHTJ2KLossless || ts == TSHTJ2KRPCL:
		return corpusCodestreamReference(t, rel, path, film, "ojph_expand", "openjph-tools", ".j2c",
			func(in, pnm string) []string { return []string{"-i", in, "-o", pnm} })
	default:
		return "lossy, not compared"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return name + " absent"
	}
	if msg, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Logf("%s: reference %s cannot decode it: %v %s", rel, name, err, firstLine(msg))
		return name + " refused"
	}
	ref, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rf, err := decodeBytes(t, ref)
	if err != nil {
		t.Errorf("%s: %s output does not decode: %v", rel, name, err)
		return name + " output refused"
	}
	if d, err := maxDiff(stored(film), stored(rf)); err != nil || d != 0 {
		t.Errorf("%s: stored values differ from %s's decompression: max |difference| %d %v", rel, name, d, err)
	}
	return name + " equal"
}

func corpusCodestreamReference(t *testing.T, rel, path string, film *Film, name, pkg, ext string, args func(in, pnm string) []string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		return name + " absent (Debian package " + pkg + ")"
	}
	dir := t.TempDir()
	cs := filepath.Join(dir, "frame"+ext)
	if err := os.WriteFile(cs, codestream(t, path), 0o644); err != nil {
		t.Fatal(err)
	}
	pnm := filepath.Join(dir, "frame.pgm")
	if film.Header.SamplesPerPixel == 3 {
		pnm = filepath.Join(dir, "frame.ppm")
	}
	if msg, err := exec.Command(bin, args(cs, pnm)...).CombinedOutput(); err != nil {
		t.Logf("%s: reference %s cannot decode it: %v %s", rel, name, err, firstLine(msg))
		return name + " refused"
	}
	ref, err := readPNM(pnm)
	if err != nil {
		t.Logf("%s: %s output unreadable: %v", rel, name, err)
		return name + " output unreadable"
	}
	got := stored(film)
	// PNM holds unsigned values: both tools write a signed codestream's
	// samples shifted up by half their range. Compared as the stored bit
	// patterns, whatever the header's Pixel Representation claims.
	frame := codestream(t, path)
	if len(frame) > 42 && frame[0] == 0xFF && frame[1] == 0x4F && frame[42]&0x80 != 0 {
		off := 1 << (frame[42] & 0x7F)
		mask := 1<<film.Header.BitsStored - 1
		if film.Header.SamplesPerPixel == 3 {
			mask = 0xFFFF
		}
		for i, v := range ref {
			ref[i] = (v - off) & mask
		}
	}
	if d, err := maxDiff(got, ref); err != nil || d != 0 {
		t.Errorf("%s: stored values differ from %s's: max |difference| %d %v", rel, name, d, err)
	}
	return name + " equal"
}

// readPNM reads a binary PGM or PPM (8- or 16-bit big endian).
func readPNM(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var magic string
	var fields []int
	for len(fields) < 3 {
		var s string
		if _, err := fmt.Fscan(r, &s); err != nil {
			return nil, err
		}
		if s[0] == '#' {
			r.ReadString('\n')
			continue
		}
		if magic == "" {
			magic = s
			continue
		}
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil {
			return nil, fmt.Errorf("pnm header %q", s)
		}
		fields = append(fields, n)
	}
	r.ReadByte()
	spp := map[string]int{"P5": 1, "P6": 3}[magic]
	if spp == 0 {
		return nil, fmt.Errorf("pnm magic %q", magic)
	}
	out := make([]int, fields[0]*fields[1]*spp)
	for i := range out {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		out[i] = int(b)
		if fields[2] > 255 {
			lo, err := r.ReadByte()
			if err != nil {
				return nil, err
			}
			out[i] = out[i]<<8 | int(lo)
		}
	}
	return out, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var d []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			d = append(d, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			d = append(d, "+ "+l)
		}
	}
	return strings.Join(d, "\n")
}
