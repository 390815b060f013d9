package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/dicomtest"
)

// Film is one source film of the bench's film set.
type Film struct {
	Path   string `json:"file"`
	Syntax string `json:"syntax"` // short name: explicit, jpegll, j2kll, j2k, ...
	TS     string `json:"transfer_syntax"`
	Label  string `json:"label,omitempty"`
	Photo  string `json:"photometric,omitempty"`
	Rows   int    `json:"rows"`
	Cols   int    `json:"columns"`
	Bytes  int64  `json:"bytes"`
	// uid is the SOP Instance UID the copies rewrite.
	uid  []byte
	data []byte
}

// LoadFilms reads the film set made by scripts/gen-films.py (its
// manifest.json), or every .dcm file of dir. limit > 0 keeps the first
// limit films, taking the syntaxes in turn so the mix stays the same.
func LoadFilms(dir string, limit int) ([]*Film, error) {
	var films []*Film
	if b, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err == nil {
		var m struct {
			Films []*Film `json:"films"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("film set %s: manifest.json: %w", dir, err)
		}
		films = m.Films
		for _, f := range films {
			f.Path = filepath.Join(dir, f.Path)
		}
	} else {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
		sort.Strings(paths)
		for _, p := range paths {
			films = append(films, &Film{Path: p})
		}
	}
	if len(films) == 0 {
		return nil, fmt.Errorf("no films in %s (make films generates them)", dir)
	}
	if limit > 0 && limit < len(films) {
		films = films[:limit]
	}
	for _, f := range films {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			return nil, fmt.Errorf("film set: %w", err)
		}
		h, err := decode.ReadHeader(bytes.NewReader(data), int64(len(data)), decode.DefaultLimits)
		if err != nil {
			return nil, fmt.Errorf("film set: %s: %w", f.Path, err)
		}
		if len(h.SOPInstanceUID) < 12 {
			return nil, fmt.Errorf("film set: %s: SOP Instance UID %q too short to rewrite", f.Path, h.SOPInstanceUID)
		}
		f.uid, f.data, f.Bytes = []byte(h.SOPInstanceUID), data, int64(len(data))
		f.TS, f.Rows, f.Cols, f.Photo = h.TransferSyntax, h.Rows, h.Columns, h.Photometric
		if f.Syntax == "" {
			f.Syntax = syntaxName(h.TransferSyntax)
		}
	}
	return films, nil
}

func syntaxName(ts string) string {
	switch ts {
	case "1.2.840.10008.1.2":
		return "implicit"
	case "1.2.840.10008.1.2.1":
		return "explicit"
	case "1.2.840.10008.1.2.4.50":
		return "jpeg"
	case "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70":
		return "jpegll"
	case "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81":
		return "jpegls"
	case "1.2.840.10008.1.2.4.90":
		return "j2kll"
	case "1.2.840.10008.1.2.4.91":
		return "j2k"
	case "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202":
		return "htj2kll"
	case "1.2.840.10008.1.2.4.203":
		return "htj2k"
	case "1.2.840.10008.1.2.5":
		return "rle"
	}
	return ts
}

// copies makes unique instances of the film set: copy n is film n mod
// len(films) with its SOP Instance UID's last 10 characters replaced by a
// counter, everywhere it occurs (file meta and data set), so every copy is
// a new instance to the daemon and to JetStream's deduplication, while its
// pixels, and so its scores, stay those of its source film.
type copies struct {
	films []*Film
	run   uint32 // distinguishes the runs of one bench
	n     atomic.Uint64
}

// next returns the next copy's bytes, its UID and its source film.
func (c *copies) next() ([]byte, string, *Film) {
	i := c.n.Add(1) - 1
	f := c.films[int(i%uint64(len(c.films)))]
	// "1" + run (3 digits) + counter (6 digits): never a leading zero.
	suffix := fmt.Sprintf("1%03d%06d", c.run%1000, i%1000000)
	uid := append([]byte(nil), f.uid...)
	if bytes.IndexByte(uid[len(uid)-len(suffix):], '.') < 0 {
		copy(uid[len(uid)-len(suffix):], suffix)
	} else {
		// The last component is shorter than the suffix: rewrite the tail
		// digits only, keeping the dots.
		k := 0
		for j := len(uid) - 1; j >= 0 && k < len(suffix); j-- {
			if uid[j] != '.' {
				uid[j] = suffix[len(suffix)-1-k]
				k++
			}
		}
	}
	return bytes.ReplaceAll(f.data, f.uid, uid), string(uid), f
}

// SmallFilms writes n small films for the backlog run: the shared data set's
// JPEGs at their own size (shorter side 256), 12 bits stored in 16,
// explicit VR little endian, MONOCHROME2 and MONOCHROME1 alternating, each
// with a unique SOP Instance UID. They are cheap to decode, so the backlog
// measures the pipeline's memory against the backlog's length, not the
// codecs.
func SmallFilms(dir, cxrDir string, n int) ([]string, error) {
	imgs, _ := filepath.Glob(filepath.Join(cxrDir, "images", "*.jpg"))
	sort.Strings(imgs)
	if len(imgs) == 0 {
		return nil, fmt.Errorf("no images in %s", cxrDir)
	}
	if len(imgs) > 64 {
		imgs = imgs[:64]
	}
	var grays []*image.Gray
	for _, p := range imgs {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		g, err := decode.ImageFile(b, decode.DefaultLimits)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		grays = append(grays, g)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var out []string
	for i := range n {
		g := grays[i%len(grays)]
		w, h := g.Rect.Dx(), g.Rect.Dy()
		px := make([]int, w*h)
		mono1 := i%2 == 1
		for k, v := range g.Pix[:w*h] {
			s := min(max(int(v)*16+8+int(rng.NormFloat64()*12), 0), 4095)
			if mono1 {
				s = 4095 - s
			}
			px[k] = s
		}
		photo := "MONOCHROME2"
		center := 2048.0
		if mono1 {
			photo = "MONOCHROME1"
			center = 2047
		}
		data := dicomtest.Image{
			Rows: h, Columns: w, BitsAllocated: 16, BitsStored: 12, Photometric: photo,
			Pixels: px, Center: center, Width: 4096, BodyPart: "CHEST", View: "PA", Modality: "DX",
			SOPInstanceUID: fmt.Sprintf("2.25.1813.9%09d", i+1),
		}.Bytes()
		p := filepath.Join(dir, fmt.Sprintf("backlog-%06d.dcm", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func shortSyntaxes(films []*Film) string {
	seen := map[string]int{}
	var order []string
	for _, f := range films {
		if seen[f.Syntax] == 0 {
			order = append(order, f.Syntax)
		}
		seen[f.Syntax]++
	}
	var s []string
	for _, k := range order {
		s = append(s, fmt.Sprintf("%d %s", seen[k], k))
	}
	return strings.Join(s, ", ")
}
