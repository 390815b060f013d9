package resultobj

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/resultobj/uid"
)

// SOP classes of the objects built here.
const (
	Comprehensive3DSRStorage  = "1.2.840.10008.5.1.4.1.1.88.34"
	SecondaryCaptureStorage   = "1.2.840.10008.5.1.4.1.1.7"
	ImplementationVersionName = "TRIAGED"
)

// ImplementationClassUID identifies this writer in every file's meta
// information: fixed, under the 2.25 arc.
var ImplementationClassUID = must(uid.Derive(uid.DefaultRoot, "triaged", "implementation-class"))

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// Defaults of Options' zero fields.
const (
	DefaultSeriesNumber      = 9901
	DefaultSeriesDescription = "triaged AI result"
	DefaultManufacturer      = "triaged"
)

// Options say how the objects are identified and labelled. The zero value
// works: every empty field takes its default.
type Options struct {
	// UIDRoot is the root every generated UID is derived under; empty is
	// uid.DefaultRoot (2.25). It must pass uid.ValidRoot.
	UIDRoot string
	// SeriesNumber is the SR series' number; the SC series gets the next
	// one. 0: DefaultSeriesNumber.
	SeriesNumber int
	// SeriesDescription of the SR series; the SC series adds " heatmap".
	// Empty: DefaultSeriesDescription.
	SeriesDescription string
	// Manufacturer, and the equipment's serial number (empty: the
	// result's host) and software version (empty: the result's daemon
	// version), for the equipment modules and the device observer.
	Manufacturer       string
	DeviceSerialNumber string
	SoftwareVersion    string
}

func (o Options) withDefaults(r *publish.Result) Options {
	if o.SeriesNumber == 0 {
		o.SeriesNumber = DefaultSeriesNumber
	}
	if o.SeriesDescription == "" {
		o.SeriesDescription = DefaultSeriesDescription
	}
	if o.Manufacturer == "" {
		o.Manufacturer = DefaultManufacturer
	}
	if o.DeviceSerialNumber == "" {
		o.DeviceSerialNumber = r.Host
	}
	if o.DeviceSerialNumber == "" {
		o.DeviceSerialNumber = "unknown"
	}
	if o.SoftwareVersion == "" {
		o.SoftwareVersion = r.Daemon
	}
	if o.SoftwareVersion == "" {
		o.SoftwareVersion = "unknown"
	}
	return o
}

// Check reports an unusable option.
func (o Options) Check() error {
	if o.UIDRoot != "" {
		if err := uid.ValidRoot(o.UIDRoot); err != nil {
			return fmt.Errorf("resultobj: uid root: %w", err)
		}
	}
	if o.SeriesNumber < 0 || o.SeriesNumber > 2147483646 {
		return fmt.Errorf("resultobj: series number %d out of range", o.SeriesNumber)
	}
	return nil
}

// UIDs are the identifiers of one film's result objects. Each is derived
// from the source film's SOP Instance UID (the study's UID for the
// series) and the model set, so scoring the same film with the same models
// again produces the same UIDs, and a PACS replaces rather than adds.
type UIDs struct {
	SRSeries, SRInstance string
	SCSeries, SCInstance string
	// Tracking is the SR measurement group's Tracking Unique Identifier;
	// Device the SR's Device Observer UID (from the serial number).
	Tracking, Device string
}

// DeriveUIDs computes the UIDs of a film's result objects. Both series are
// per study and model set: every film of a study scored by the same
// models lands in the same two series (one SR, one SC: a series holds one
// modality).
func DeriveUIDs(root, studyUID, sopUID, modelSet, deviceSerial string) (UIDs, error) {
	var u UIDs
	var err error
	for _, x := range []struct {
		dst   *string
		parts []string
	}{
		{&u.SRSeries, []string{"sr-series", studyUID, modelSet}},
		{&u.SRInstance, []string{"sr", sopUID, modelSet}},
		{&u.SCSeries, []string{"sc-series", studyUID, modelSet}},
		{&u.SCInstance, []string{"sc", sopUID, modelSet}},
		{&u.Tracking, []string{"tracking", sopUID, modelSet}},
		{&u.Device, []string{"device", deviceSerial}},
	} {
		if *x.dst, err = uid.Derive(root, x.parts...); err != nil {
			return UIDs{}, fmt.Errorf("resultobj: derive UIDs: %w", err)
		}
	}
	return u, nil
}

// Objects are one film's result objects, Part 10 files.
type Objects struct {
	UIDs UIDs
	// SR is the Comprehensive 3D SR; SC the Secondary Capture of the
	// heatmap overlay (nil when there was no overlay).
	SR, SC []byte
}

// Build makes the result objects of a scored film: the SR always, the SC
// when overlayPNG (the alert's heatmap overlay, as heatmap.EncodePNG
// makes it) is not empty. src carries the attributes copied from the film
// (see ReadSource); its UIDs must match r's.
func Build(src *SourceFilm, r *publish.Result, overlayPNG []byte, o Options) (*Objects, error) {
	if src == nil || r == nil {
		return nil, errors.New("resultobj: no source film or no result")
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	o = o.withDefaults(r)
	if err := checkInputs(src, r); err != nil {
		return nil, err
	}
	u, err := DeriveUIDs(o.UIDRoot, src.StudyInstanceUID, src.SOPInstanceUID, r.ModelSet, o.DeviceSerialNumber)
	if err != nil {
		return nil, err
	}
	c := &builder{src: src, r: r, o: o, u: u, at: r.ScoredAt.UTC()}
	if c.at.IsZero() {
		return nil, &InputError{Field: "result scored_at", Err: errors.New("missing")}
	}
	objs := &Objects{UIDs: u}
	// The SC first: the SR references it only if it exists.
	if len(overlayPNG) > 0 {
		if objs.SC, err = c.sc(overlayPNG); err != nil {
			return nil, fmt.Errorf("resultobj: build SC: %w", err)
		}
		c.withSC = true
	}
	if objs.SR, err = c.sr(); err != nil {
		return nil, fmt.Errorf("resultobj: build SR: %w", err)
	}
	return objs, nil
}

func checkInputs(src *SourceFilm, r *publish.Result) error {
	for _, x := range []struct{ name, v string }{
		{"source SOP Class UID", src.SOPClassUID},
		{"source SOP Instance UID", src.SOPInstanceUID},
		{"source Study Instance UID", src.StudyInstanceUID},
		{"source Series Instance UID", src.SeriesInstanceUID},
	} {
		if err := checkUID(x.name, x.v); err != nil {
			return err
		}
	}
	if r.Film.SOPInstanceUID != "" && r.Film.SOPInstanceUID != src.SOPInstanceUID {
		return &InputError{Field: "result film", Err: errors.New("SOP Instance UID differs from the source film's")}
	}
	if r.ModelSet == "" {
		return &InputError{Field: "result model_set", Err: errors.New("missing")}
	}
	if len(r.Models) == 0 {
		return &InputError{Field: "result models", Err: errors.New("none")}
	}
	if _, ok := priorityCode(r.Priority); !ok {
		return &InputError{Field: "result priority", Err: fmt.Errorf("%q is not critical, urgent or routine", r.Priority)}
	}
	for _, p := range append([]float64{r.Score}, probs(r.Models)...) {
		if !(p >= 0 && p <= 1) {
			return &InputError{Field: "result scores", Err: fmt.Errorf("%v is not a probability", p)}
		}
	}
	return nil
}

func probs(ms []publish.ModelScore) []float64 {
	p := make([]float64, len(ms))
	for i, m := range ms {
		p[i] = m.Probability
	}
	return p
}

// builder holds one build's inputs.
type builder struct {
	src *SourceFilm
	r   *publish.Result
	o   Options
	u   UIDs
	at  time.Time
	// withSC: the SC was built, and the SR points to it.
	withSC bool
}

func (c *builder) date() string { return c.at.Format("20060102") }
func (c *builder) time() string { return c.at.Format("150405.000000") }

// common adds the modules both objects share: SOP Common, Patient,
// General Study, the series' identity and the General Equipment.
func (c *builder) common(d *dataset, sopClass, sopInstance, series, modality string, seriesNumber int, seriesDesc string) {
	s := c.src
	pn, pid, issuer := text("PN", s.PatientName), text("LO", s.PatientID), text("LO", s.IssuerOfPatientID)
	ref, acc, sid, desc := text("PN", s.ReferringPhysicianName), text("SH", s.AccessionNumber), text("SH", s.StudyID), text("LO", s.StudyDescription)
	if !ascii(pn, pid, issuer, ref, acc, sid, desc) {
		d.str(0x00080005, "CS", "ISO_IR 192")
	}
	d.str(0x00080012, "DA", c.date())
	d.str(0x00080013, "TM", c.time())
	d.str(0x00080016, "UI", sopClass)
	d.str(0x00080018, "UI", sopInstance)
	d.str(0x00080020, "DA", da(s.StudyDate))
	d.str(0x00080021, "DA", c.date())
	d.str(0x00080023, "DA", c.date())
	d.str(0x00080030, "TM", tm(s.StudyTime))
	d.str(0x00080031, "TM", c.time())
	d.str(0x00080033, "TM", c.time())
	d.str(0x00080050, "SH", acc)
	d.str(0x00080060, "CS", modality)
	d.str(0x00080070, "LO", text("LO", c.o.Manufacturer))
	d.str(0x00080090, "PN", ref)
	d.str(0x00080201, "SH", "+0000")
	if desc != "" {
		d.str(0x00081030, "LO", desc)
	}
	d.str(0x0008103E, "LO", text("LO", seriesDesc))
	d.str(0x00081090, "LO", text("LO", c.r.ModelSet))
	d.str(0x00100010, "PN", pn)
	d.str(0x00100020, "LO", pid)
	if issuer != "" {
		d.str(0x00100021, "LO", issuer)
	}
	d.str(0x00100030, "DA", da(s.PatientBirthDate))
	d.str(0x00100040, "CS", sex(s.PatientSex))
	d.str(0x00181000, "LO", text("LO", c.o.DeviceSerialNumber))
	d.str(0x00181020, "LO", text("LO", c.o.SoftwareVersion))
	d.str(0x0020000D, "UI", s.StudyInstanceUID)
	d.str(0x0020000E, "UI", series)
	d.str(0x00200010, "SH", sid)
	d.str(0x00200011, "IS", strconv.Itoa(seriesNumber))
	d.str(0x00200013, "IS", "1")
}

// singleFrame are the storage SOP classes a chest film comes in whose
// instances are single images by definition: a Referenced Frame Number to
// one of them is an error (PS3.3 C.17.3, 10.3), whatever Number of Frames
// the file claims.
var singleFrame = map[string]bool{
	"1.2.840.10008.5.1.4.1.1.1":     true, // Computed Radiography
	"1.2.840.10008.5.1.4.1.1.1.1":   true, // Digital X-Ray, for presentation
	"1.2.840.10008.5.1.4.1.1.1.1.1": true, // Digital X-Ray, for processing
	"1.2.840.10008.5.1.4.1.1.7":     true, // Secondary Capture
}

// sopRef is the source film's Referenced SOP Class/Instance UID.
func (c *builder) sopRef() dataset {
	var d dataset
	d.str(0x00081150, "UI", c.src.SOPClassUID)
	d.str(0x00081155, "UI", c.src.SOPInstanceUID)
	return d
}

// sourceRef is a reference to the source film (and its frame 1 if it has
// several and its SOP class is a multi-frame one): Referenced SOP Class/Instance UID, Referenced Frame Number.
func (c *builder) sourceRef() dataset {
	d := c.sopRef()
	if c.src.NumberOfFrames > 1 && !singleFrame[c.src.SOPClassUID] {
		d.str(0x00081160, "IS", "1")
	}
	return d
}

// ds formats a number as a DS value (at most 16 characters).
func ds(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if len(s) <= 16 {
		return s
	}
	for prec := 14; prec >= 0; prec-- {
		s = strconv.FormatFloat(v, 'f', prec, 64)
		if len(s) <= 16 {
			return strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
	}
	return strconv.FormatFloat(v, 'g', 10, 64)
}
