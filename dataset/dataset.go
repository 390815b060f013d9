// Package dataset turns a labeled set of DICOM films into the training set
// the daemon would see: each film decoded by the daemon's own decoder
// (decode, the display pipeline of docs/dicom.md) into the display-ready
// 8-bit image that preprocessing starts from, written as a lossless PNG,
// plus a labels.csv in the columns training/ reads. Training on these
// pixels and serving on the same films then start from identical images:
// one decode for training and serving.
package dataset

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Film is one labeled input film.
type Film struct {
	Path    string // the DICOM file
	Label   string // covid or non
	Source  string // site or source; may be empty
	Patient string // patient ID; may be empty
	View    string // view as given; may be empty
}

// Labels are the spellings a labels CSV may use, mapped to training's
// class names (training/common.py LABELS).
func normLabel(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "covid", "covid-19", "covid19", "positive", "pos", "1", "true":
		return "covid", nil
	case "non", "non-covid", "noncovid", "negative", "neg", "normal", "0", "false":
		return "non", nil
	}
	return "", fmt.Errorf("unknown label %q (use covid or non)", s)
}

// maxRows bounds a labels CSV: a training set of a site is thousands of
// films, not millions, and every row is held in memory.
const maxRows = 1_000_000

// ReadCSV reads a labels CSV: columns file (relative to the CSV's folder,
// or absolute) and label, optionally source or site, patient_id or patient,
// and view.
func ReadCSV(path string) ([]Film, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open labels %s: %w", path, err)
	}
	defer f.Close()
	films, err := parseCSV(f, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", path, err)
	}
	return films, nil
}

func parseCSV(r io.Reader, dir string) ([]Film, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	for _, need := range []string{"file", "label"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("no %q column (want file,label[,source|site][,patient_id|patient][,view])", need)
		}
	}
	get := func(rec []string, names ...string) string {
		for _, n := range names {
			if i, ok := col[n]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
		}
		return ""
	}
	var films []Film
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if len(films) >= maxRows {
			return nil, fmt.Errorf("more than %d rows", maxRows)
		}
		file := get(rec, "file")
		if file == "" {
			return nil, fmt.Errorf("line %d: empty file", line)
		}
		lab, err := normLabel(get(rec, "label"))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		films = append(films, Film{Path: file, Label: lab, Source: get(rec, "source", "site"),
			Patient: get(rec, "patient_id", "patient"), View: get(rec, "view")})
	}
	return films, nil
}

// ReadFolder reads a labeled folder: every file under covid/ and non/
// (recursively; hidden files skipped). The folder's name is the source.
func ReadFolder(dir string) ([]Film, error) {
	var films []Film
	for _, lab := range []string{"covid", "non"} {
		root := filepath.Join(dir, lab)
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("labeled folder %s: no %s/ subfolder (want covid/ and non/)", dir, lab)
		}
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && p != root {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				films = append(films, Film{Path: p, Label: lab, Source: filepath.Base(filepath.Clean(dir))})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("labeled folder %s: %w", dir, err)
		}
	}
	sort.Slice(films, func(i, j int) bool { return films[i].Path < films[j].Path })
	return films, nil
}
