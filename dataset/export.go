package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/triaged/triaged/decode"
)

// LabelsHeader is the header of the labels.csv Export writes. file, label,
// source, view and patient_id are what training/common.py reads; the rest
// say which film each image came from and how it was displayed.
var LabelsHeader = []string{"file", "label", "source", "view", "patient_id",
	"film_id", "sop_instance_uid", "transfer_syntax", "display", "rows", "columns", "dicom"}

// RejectsHeader is the header of rejects.csv: the films that could not be
// exported, with the decoder's reason code (decode.Code) and reason.
var RejectsHeader = []string{"dicom", "label", "code", "reason"}

// CodeDuplicate rejects a film whose bytes equal an earlier one's: the same
// film twice would sit on both sides of a split.
const CodeDuplicate = "duplicate"

// Options tune an export.
type Options struct {
	Limits  decode.Limits
	Workers int // films decoded in parallel (default 1)
	// Progress, if set, is called after each film (from one goroutine at a time).
	Progress func(done, total int)
}

// Summary counts an export's outcome.
type Summary struct {
	Exported int            `json:"exported"`
	Rejected int            `json:"rejected"`
	Codes    map[string]int `json:"rejected_by_code,omitempty"`
	Labels   string         `json:"labels"`
	Rejects  string         `json:"rejects"`
}

type outcome struct {
	row  []string // labels.csv row, or nil
	code string
	why  string
	id   string
}

// Export decodes every film with the daemon's decoder and writes, under
// dir, images/<film_id>.png (the display-ready 8-bit image, lossless),
// labels.csv (LabelsHeader, in input order) and rejects.csv (RejectsHeader).
// The film ID is the first 16 hex digits of the sha256 of the file, so a
// re-export names the same film the same way and no file name from the
// sender reaches an output name. A film that cannot be read or decoded is
// a reject, never an error; the error is for the output (or ctx) only.
func Export(ctx context.Context, films []Film, dir string, o Options) (Summary, error) {
	sum := Summary{Codes: map[string]int{}, Labels: filepath.Join(dir, "labels.csv"), Rejects: filepath.Join(dir, "rejects.csv")}
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return sum, fmt.Errorf("dataset export: %w", err)
	}
	workers := max(o.Workers, 1)
	outs := make([]outcome, len(films))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				outs[i] = exportOne(ctx, films[i], dir, o.Limits)
				if o.Progress != nil {
					mu.Lock()
					done++
					o.Progress(done, len(films))
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for i := range films {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return sum, fmt.Errorf("dataset export: %w", err)
	}

	var rows, rejects [][]string
	seen := map[string]int{} // film ID -> input line of its first occurrence
	for i, out := range outs {
		f := films[i]
		if out.row == nil {
			rejects = append(rejects, []string{f.Path, f.Label, out.code, out.why})
			sum.Codes[out.code]++
			continue
		}
		if first, dup := seen[out.id]; dup {
			rejects = append(rejects, []string{f.Path, f.Label, CodeDuplicate, "same bytes as " + films[first].Path})
			sum.Codes[CodeDuplicate]++
			continue
		}
		seen[out.id] = i
		rows = append(rows, out.row)
	}
	sum.Exported, sum.Rejected = len(rows), len(rejects)
	if err := writeCSV(sum.Labels, LabelsHeader, rows); err != nil {
		return sum, err
	}
	if err := writeCSV(sum.Rejects, RejectsHeader, rejects); err != nil {
		return sum, err
	}
	return sum, nil
}

func exportOne(ctx context.Context, f Film, dir string, lim decode.Limits) outcome {
	in, err := os.Open(f.Path)
	if err != nil {
		return outcome{code: string(decode.CodeUnreadable), why: pathless(err)}
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return outcome{code: string(decode.CodeUnreadable), why: pathless(err)}
	}
	if !st.Mode().IsRegular() {
		return outcome{code: string(decode.CodeNotRegularFile), why: "not a regular file"}
	}
	if lim.MaxFileSize > 0 && st.Size() > lim.MaxFileSize {
		return outcome{code: string(decode.CodeTooLarge), why: fmt.Sprintf("%d bytes, more than the limit %d", st.Size(), lim.MaxFileSize)}
	}
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return outcome{code: string(decode.CodeUnreadable), why: pathless(err)}
	}
	id := hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return outcome{code: string(decode.CodeUnreadable), why: pathless(err)}
	}
	var (
		img     *image.Gray
		hdr     = &decode.Header{}
		display = "image"
	)
	head := make([]byte, 132)
	n, _ := io.ReadFull(in, head)
	if decode.Sniff(head[:n]) == decode.KindImage {
		data, err := io.ReadAll(in)
		if err == nil {
			img, err = decode.ImageFile(append(head[:n:n], data...), lim)
		}
		if err != nil {
			return outcome{code: string(decode.CodeOf(err)), why: decode.Reason(err)}
		}
		hdr.Rows, hdr.Columns = img.Rect.Dy(), img.Rect.Dx()
	} else {
		if _, err := in.Seek(0, io.SeekStart); err != nil {
			return outcome{code: string(decode.CodeUnreadable), why: pathless(err)}
		}
		film, err := decode.DecodeContext(ctx, in, st.Size(), lim)
		if err != nil {
			return outcome{code: string(decode.CodeOf(err)), why: decode.Reason(err)}
		}
		img, hdr, display = film.Image, film.Header, film.Display
	}
	rel := filepath.Join("images", id+".png")
	if err := writePNG(filepath.Join(dir, rel), img); err != nil {
		return outcome{code: "write_error", why: err.Error()}
	}
	return outcome{id: id, row: []string{filepath.ToSlash(rel), f.Label, f.Source, f.View, f.Patient,
		id, hdr.SOPInstanceUID, hdr.TransferSyntax, display, strconv.Itoa(hdr.Rows), strconv.Itoa(hdr.Columns), f.Path}}
}

// pathless drops the path from a file error: the reject row names the file.
func pathless(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// writePNG writes atomically, so an interrupted export leaves no half image.
func writePNG(path string, img image.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".png-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(tmp, img); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeCSV(path string, head []string, rows [][]string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	w := csv.NewWriter(f)
	w.Write(head)
	w.WriteAll(rows)
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
