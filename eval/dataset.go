package eval

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Item is one labeled film or image.
type Item struct {
	Path     string `json:"path"`
	Positive bool   `json:"positive"`
	Source   string `json:"source"`
	Patient  string `json:"patient,omitempty"`
}

// Split is models/split.json, written by training/split.py: patient IDs per
// split, so evaluation uses exactly the patients training never saw.
type Split struct {
	Schema       string              `json:"schema"`
	Seed         int                 `json:"seed"`
	LabelsSHA256 string              `json:"labels_sha256"`
	Patients     map[string][]string `json:"patients"`
}

// LoadSplit reads a split file.
func LoadSplit(path string) (*Split, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read split %s: %w", path, err)
	}
	var s Split
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse split %s: %w", path, err)
	}
	return &s, nil
}

// positive maps the label spellings we accept.
func positive(label string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "covid", "covid-19", "covid19", "positive", "pos", "1", "true":
		return true, nil
	case "non", "non-covid", "noncovid", "negative", "neg", "normal", "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("unknown label %q (use covid or non)", label)
}

// LoadCSV reads a labels CSV with at least the columns `file` (relative to
// the CSV's folder) and `label`, optionally `source` and `patient_id`. With a
// split, only rows of the named set's patients are kept.
func LoadCSV(path string, split *Split, set string) ([]Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open labels %s: %w", path, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read header of %s: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, need := range []string{"file", "label"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("labels %s: no %q column (have %v)", path, need, head)
		}
	}
	var keep map[string]bool
	if split != nil {
		ps, ok := split.Patients[set]
		if !ok {
			return nil, fmt.Errorf("split has no set %q", set)
		}
		if _, ok := col["patient_id"]; !ok {
			return nil, fmt.Errorf("labels %s: a split needs a patient_id column", path)
		}
		keep = map[string]bool{}
		for _, p := range ps {
			keep[p] = true
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	dir := filepath.Dir(path)
	var items []Item
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("labels %s line %d: %w", path, line, err)
		}
		if keep != nil && !keep[get(rec, "patient_id")] {
			continue
		}
		pos, err := positive(get(rec, "label"))
		if err != nil {
			return nil, fmt.Errorf("labels %s line %d: %w", path, line, err)
		}
		src := get(rec, "source")
		if src == "" {
			src = "(none)"
		}
		items = append(items, Item{Path: filepath.Join(dir, get(rec, "file")), Positive: pos, Source: src, Patient: get(rec, "patient_id")})
	}
	return items, nil
}

// LoadFolder reads covid/ and non/ subfolders (images or DICOM files).
func LoadFolder(dir string) ([]Item, error) {
	var items []Item
	for _, sub := range []string{"covid", "non"} {
		d := filepath.Join(dir, sub)
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("labeled folder %s: %w (want covid/ and non/ subfolders)", dir, err)
		}
		for _, e := range ents {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			items = append(items, Item{Path: filepath.Join(d, e.Name()), Positive: sub == "covid", Source: filepath.Base(dir)})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Path < items[j].Path })
	return items, nil
}
