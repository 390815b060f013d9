package resultobj

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/triaged/triaged/decode"
)

// SourceFilm is what the result objects copy from the scored film: the
// patient and study attributes (clinical output: they go into the objects
// and nowhere else) and the identity of the film they reference.
//
// Its String and LogValue methods withhold every identifying field, so a
// SourceFilm passed to a logger by mistake still leaks nothing.
type SourceFilm struct {
	SOPClassUID       string
	SOPInstanceUID    string
	StudyInstanceUID  string
	SeriesInstanceUID string
	// NumberOfFrames above 1 makes the references name frame 1, the frame
	// the pipeline scores.
	NumberOfFrames int
	Modality       string
	// BodyPartExamined, upper case; empty is taken as CHEST (the
	// pipeline scores chest films).
	BodyPartExamined string

	PatientName       string
	PatientID         string
	IssuerOfPatientID string
	PatientBirthDate  string
	PatientSex        string

	StudyDate              string
	StudyTime              string
	AccessionNumber        string
	ReferringPhysicianName string
	StudyID                string
	StudyDescription       string
}

// String withholds the patient attributes and identifiers.
func (s SourceFilm) String() string {
	return fmt.Sprintf("resultobj.SourceFilm{Modality:%q, Frames:%d, identifiers withheld}", s.Modality, s.NumberOfFrames)
}

// GoString is String, for %#v.
func (s SourceFilm) GoString() string { return s.String() }

// LogValue implements slog.LogValuer without identifying fields.
func (s SourceFilm) LogValue() slog.Value {
	return slog.GroupValue(slog.String("modality", s.Modality), slog.Int("frames", s.NumberOfFrames))
}

// ReadSourceFile reads a film's source attributes from a file.
func ReadSourceFile(path string, lim decode.Limits) (*SourceFilm, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read source film: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read source film: %w", err)
	}
	return ReadSource(f, st.Size(), lim)
}

// ReadSource reads the attributes a result object copies from a film. The
// file first goes through decode.ReadHeader, the daemon's own pre-scan
// (every length checked against the bytes left and lim, deflate bounded),
// so what a hostile file claims is refused before the parser allocates it;
// only then are the patient and study attributes parsed, without pixel
// data. Errors wrap decode's reason codes.
func ReadSource(r io.ReaderAt, size int64, lim decode.Limits) (s *SourceFilm, err error) {
	h, err := decode.ReadHeader(io.NewSectionReader(r, 0, size), size, lim)
	if err != nil {
		return nil, fmt.Errorf("read source film header: %w", err)
	}
	defer func() {
		// Third-party parser on outside bytes: a panic it hits becomes an
		// error for this film, never a crash.
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("read source film attributes: DICOM parser panicked: %v", p)
		}
	}()
	ds, err := dicom.Parse(io.NewSectionReader(r, 0, size), size, nil,
		dicom.AllowUnknownSpecificCharacterSet(), dicom.SkipPixelData())
	if err != nil {
		return nil, fmt.Errorf("read source film attributes: %w", err)
	}
	get := func(t tag.Tag) string {
		e, err := ds.FindElementByTag(t)
		if err != nil || e.Value == nil {
			return ""
		}
		v, ok := e.Value.GetValue().([]string)
		if !ok {
			return ""
		}
		return strings.Join(v, `\`)
	}
	return &SourceFilm{
		SOPClassUID:            h.SOPClassUID,
		SOPInstanceUID:         h.SOPInstanceUID,
		StudyInstanceUID:       h.StudyInstanceUID,
		SeriesInstanceUID:      h.SeriesInstanceUID,
		NumberOfFrames:         h.NumberOfFrames,
		Modality:               h.Modality,
		BodyPartExamined:       h.BodyPart,
		PatientName:            get(tag.PatientName),
		PatientID:              get(tag.PatientID),
		IssuerOfPatientID:      get(tag.IssuerOfPatientID),
		PatientBirthDate:       get(tag.PatientBirthDate),
		PatientSex:             get(tag.PatientSex),
		StudyDate:              get(tag.StudyDate),
		StudyTime:              get(tag.StudyTime),
		AccessionNumber:        get(tag.AccessionNumber),
		ReferringPhysicianName: get(tag.ReferringPhysicianName),
		StudyID:                get(tag.StudyID),
		StudyDescription:       get(tag.StudyDescription),
	}, nil
}

func (s *SourceFilm) bodyPart() string {
	if b := cs(s.BodyPartExamined); b != "" {
		return b
	}
	return "CHEST"
}
