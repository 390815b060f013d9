// Package splitdata lists the images of one part of the patient-level split
// (models/split.json) of the shared chest X-ray set, so tests, benchmarks and
// tools use exactly the films the models were evaluated on.
package splitdata

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Image is one labelled image of the shared set.
type Image struct {
	Path   string // absolute path of the JPEG
	File   string // path relative to cxr/, as in labels.csv
	Label  string // covid or non
	Source string
}

// Images returns the images of the patients listed under part ("train",
// "val" or "test") in splitPath whose label is label ("" for all), sorted by
// file name. cxrDir is shared/data/cxr.
func Images(splitPath, cxrDir, part, label string) ([]Image, error) {
	b, err := os.ReadFile(splitPath)
	if err != nil {
		return nil, fmt.Errorf("read split: %w", err)
	}
	var s struct {
		Patients map[string][]string `json:"patients"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse split %s: %w", splitPath, err)
	}
	pats, ok := s.Patients[part]
	if !ok {
		return nil, fmt.Errorf("split %s has no part %q", splitPath, part)
	}
	in := make(map[string]bool, len(pats))
	for _, p := range pats {
		in[p] = true
	}
	f, err := os.Open(filepath.Join(cxrDir, "labels.csv"))
	if err != nil {
		return nil, fmt.Errorf("open labels: %w", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("%s has no rows", f.Name())
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, c := range []string{"file", "label", "source", "patient_id"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s has no %s column", f.Name(), c)
		}
	}
	var out []Image
	for _, r := range rows[1:] {
		if !in[r[col["patient_id"]]] || (label != "" && r[col["label"]] != label) {
			continue
		}
		out = append(out, Image{Path: filepath.Join(cxrDir, r[col["file"]]), File: r[col["file"]], Label: r[col["label"]], Source: r[col["source"]]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, nil
}
