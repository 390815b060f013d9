package eval

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// UIDLabels are the labels a site collects after the fact (from reports),
// keyed by DICOM UID rather than by file: a CSV with a sop_instance_uid or
// a study_instance_uid column and a label column (covid/non, 1/0, ...).
// A study label applies to every film of the study.
type UIDLabels struct {
	// By is the column the labels are keyed by: sop_instance_uid or
	// study_instance_uid.
	By       string
	Positive map[string]bool
}

// UID label columns.
const (
	BySOP   = "sop_instance_uid"
	ByStudy = "study_instance_uid"
)

// maxUIDLen bounds a UID (DICOM: 64 characters; film-<id> stand-ins are
// shorter), so a malformed file is refused rather than held.
const maxUIDLen = 128

// LoadUIDLabels reads a labels CSV keyed by UID.
func LoadUIDLabels(path string) (*UIDLabels, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open labels %s: %w", path, err)
	}
	defer f.Close()
	l, err := ParseUIDLabels(f)
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", path, err)
	}
	return l, nil
}

// ParseUIDLabels parses a labels CSV keyed by UID. A UID listed twice with
// the same label is kept once; with different labels it is an error, as is
// an unknown label.
func ParseUIDLabels(r io.Reader) (*UIDLabels, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file: want a header with sop_instance_uid or study_instance_uid, and label")
		}
		return nil, fmt.Errorf("header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	l := &UIDLabels{Positive: map[string]bool{}}
	_, sop := col[BySOP]
	_, study := col[ByStudy]
	switch {
	case sop && study:
		return nil, fmt.Errorf("both %s and %s columns: give one", BySOP, ByStudy)
	case sop:
		l.By = BySOP
	case study:
		l.By = ByStudy
	default:
		return nil, fmt.Errorf("no %s or %s column (header has %d columns)", BySOP, ByStudy, len(head))
	}
	lc, ok := col["label"]
	if !ok {
		return nil, errors.New("no label column")
	}
	uc := col[l.By]
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if uc >= len(rec) || lc >= len(rec) {
			return nil, fmt.Errorf("line %d: %d fields, too few for the header", line, len(rec))
		}
		uid := strings.TrimSpace(rec[uc])
		if uid == "" && strings.TrimSpace(rec[lc]) == "" {
			continue // blank line of a spreadsheet export
		}
		if uid == "" || len(uid) > maxUIDLen {
			return nil, fmt.Errorf("line %d: %s is empty or longer than %d characters", line, l.By, maxUIDLen)
		}
		pos, err := positive(rec[lc])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if prev, seen := l.Positive[uid]; seen && prev != pos {
			// Not the UID itself: it identifies a patient's film.
			return nil, fmt.Errorf("line %d: a UID labeled both ways (also on an earlier line)", line)
		}
		l.Positive[uid] = pos
	}
	if len(l.Positive) == 0 {
		return nil, errors.New("no labels")
	}
	return l, nil
}
