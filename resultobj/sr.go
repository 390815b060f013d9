package resultobj

import "fmt"

// NotForDiagnosticUse is the statement every object carries.
const NotForDiagnosticUse = "NOT FOR DIAGNOSTIC USE. Research software: the result of an automated triage model, not reviewed by a physician."

// node is an SR content item and its children.
type node struct {
	rel, vt string // relationship type (empty for the root), value type
	name    code
	text    string
	code    code
	uid     string
	num     string
	unit    code
	image   dataset // IMAGE: the Referenced SOP Sequence item
	kids    []node
}

func (n node) add(k ...node) node { n.kids = append(n.kids, k...); return n }

func container(rel string, name code, kids ...node) node {
	return node{rel: rel, vt: "CONTAINER", name: name, kids: kids}
}
func textItem(rel string, name code, v string) node {
	return node{rel: rel, vt: "TEXT", name: name, text: v}
}
func codeItem(rel string, name, v code) node {
	return node{rel: rel, vt: "CODE", name: name, code: v}
}
func uidItem(rel string, name code, v string) node {
	return node{rel: rel, vt: "UIDREF", name: name, uid: v}
}
func numItem(rel string, name code, v float64, unit code) node {
	return node{rel: rel, vt: "NUM", name: name, num: ds(v), unit: unit}
}

// item encodes a content item (not the root: its attributes go to the
// top level of the data set).
func (n node) item() dataset {
	var d dataset
	d.str(0x0040A010, "CS", n.rel)
	n.attrs(&d)
	return d
}

func (n node) attrs(d *dataset) {
	d.str(0x0040A040, "CS", n.vt)
	if n.name != (code{}) { // an image library entry has no concept name
		d.seq(0x0040A043, n.name.item())
	}
	switch n.vt {
	case "CONTAINER":
		d.str(0x0040A050, "CS", "SEPARATE")
	case "TEXT":
		d.str(0x0040A160, "UT", text("LT", n.text))
	case "CODE":
		d.seq(0x0040A168, n.code.item())
	case "UIDREF":
		d.str(0x0040A124, "UI", n.uid)
	case "NUM":
		var mv dataset
		mv.seq(0x004008EA, n.unit.item())
		mv.str(0x0040A30A, "DS", n.num)
		d.seq(0x0040A300, mv)
	case "IMAGE":
		d.seq(0x00081199, n.image)
	}
	if len(n.kids) > 0 {
		items := make([]dataset, len(n.kids))
		for i, k := range n.kids {
			items[i] = k.item()
		}
		d.seq(0x0040A730, items...)
	}
}

// content is the SR's content tree, TID 1500 (documented, item by item,
// in docs/results-in-pacs.md).
func (c *builder) content() node {
	r := c.r
	root := container("", codeReport,
		codeItem("HAS CONCEPT MOD", codeLanguage, codeEnglish),
		// TID 1002 observer context: the device that made the report.
		codeItem("HAS OBS CONTEXT", codeObserverType, codeDevice),
		uidItem("HAS OBS CONTEXT", codeDeviceUID, c.u.Device),
		textItem("HAS OBS CONTEXT", codeDeviceName, "triaged"),
		textItem("HAS OBS CONTEXT", codeDeviceMfr, c.o.Manufacturer),
		textItem("HAS OBS CONTEXT", codeDeviceModel, r.ModelSet),
		textItem("HAS OBS CONTEXT", codeDeviceSerial, c.o.DeviceSerialNumber),
		codeItem("HAS CONCEPT MOD", codeProcedureReported, codeImagingProcedure),
	)

	// TID 1600 image library: the scored film.
	entry := node{rel: "CONTAINS", vt: "IMAGE", image: c.sourceRef()}
	if m, ok := modalityCodes[c.src.Modality]; ok {
		entry = entry.add(codeItem("HAS ACQ CONTEXT", codeModality, m))
	}
	root = root.add(container("CONTAINS", codeImageLibrary,
		container("CONTAINS", codeImageLibraryGroup, entry)))

	// TID 1501: one measurement group, the COVID-19 finding.
	pc, _ := priorityCode(r.Priority)
	group := container("CONTAINS", codeMeasGroup,
		textItem("HAS OBS CONTEXT", codeTrackingID, "COVID-19 likelihood"),
		uidItem("HAS OBS CONTEXT", codeTrackingUID, c.u.Tracking),
		codeItem("CONTAINS", codeFinding, codeCOVID19),
		codeItem("HAS CONCEPT MOD", codeFindingSite, codeLung),
	)
	// TID 4019 for the group: triaged itself, with the thresholds in force.
	group = group.add(c.algorithm("triaged", r.Daemon, c.parameters()...)...)
	ensemble := numItem("CONTAINS", codeProbability, r.Score, unitProbability)
	if len(r.Models) > 1 {
		ensemble = ensemble.add(codeItem("HAS CONCEPT MOD", codeDerivation, codeMean))
	}
	ensemble = ensemble.add(c.algorithm("triaged ensemble", r.ModelSet)...)
	group = group.add(ensemble)
	for _, m := range r.Models {
		group = group.add(numItem("CONTAINS", codeProbability, m.Probability, unitProbability).
			add(c.algorithm(m.Name, m.Version)...))
	}
	if c.withSC {
		// The heatmap image, as the group's illustration (TID 1501 row
		// 10b); it is listed in the Pertinent Other Evidence Sequence.
		group = group.add(node{rel: "CONTAINS", vt: "IMAGE", name: codeIllustration, image: c.scRef()})
	}
	root = root.add(container("CONTAINS", codeImagingMeas, group))

	// TID 1500's own qualitative evaluations (any CODE or TEXT): the
	// priority, the statement, the reason for the priority.
	root = root.add(container("CONTAINS", codeQualEvaluations,
		codeItem("CONTAINS", codePriority, pc),
		textItem("CONTAINS", codeComment, NotForDiagnosticUse),
		textItem("CONTAINS", codeComment, r.PriorityReason)))
	return root
}

// algorithm is TID 4019: name, version, parameters (HAS CONCEPT MOD).
func (c *builder) algorithm(name, version string, params ...string) []node {
	if version == "" {
		version = "unknown"
	}
	ns := []node{
		textItem("HAS CONCEPT MOD", codeAlgorithmName, name),
		textItem("HAS CONCEPT MOD", codeAlgorithmVersion, version),
	}
	for _, p := range params {
		ns = append(ns, textItem("HAS CONCEPT MOD", codeAlgorithmParams, p))
	}
	return ns
}

// parameters are the thresholds the priority was decided with.
func (c *builder) parameters() []string {
	t := c.r.Thresholds
	ps := []string{
		"model_set=" + c.r.ModelSet,
		"urgent_threshold=" + ds(t.Urgent),
		"critical_threshold=" + ds(t.Critical),
	}
	if t.CalibratedOn != "" {
		ps = append(ps, "calibrated_on="+t.CalibratedOn)
	}
	return ps
}

// sr encodes the Comprehensive 3D SR.
func (c *builder) sr() ([]byte, error) {
	var d dataset
	c.common(&d, Comprehensive3DSRStorage, c.u.SRInstance, c.u.SRSeries, "SR", c.o.SeriesNumber, c.o.SeriesDescription)
	d.seq(0x00081111) // Referenced Performed Procedure Step Sequence: none (type 2)

	// Coding Scheme Identification: the private scheme, and the
	// standard ones by their registered UIDs.
	var priv dataset
	priv.str(0x00080102, "SH", PrivateScheme)
	priv.str(0x00080115, "ST", "triaged private codes")
	priv.str(0x00080116, "ST", "triaged project (see docs/results-in-pacs.md)")
	d.seq(0x00080110, priv)

	// SR Document General.
	d.str(0x0040A491, "CS", "COMPLETE")
	d.str(0x0040A493, "CS", "UNVERIFIED")
	d.seq(0x0040A372) // Performed Procedure Code Sequence: none (type 2)
	sop := c.sopRef()
	var series dataset
	series.str(0x0020000E, "UI", c.src.SeriesInstanceUID)
	series.seq(0x00081199, sop)
	var study dataset
	study.str(0x0020000D, "UI", c.src.StudyInstanceUID)
	study.seq(0x00081115, series)
	d.seq(0x0040A375, study) // Current Requested Procedure Evidence Sequence
	if c.withSC {
		var scSeries dataset
		scSeries.str(0x0020000E, "UI", c.u.SCSeries)
		scSeries.seq(0x00081199, c.scRef())
		var scStudy dataset
		scStudy.str(0x0020000D, "UI", c.src.StudyInstanceUID)
		scStudy.seq(0x00081115, scSeries)
		d.seq(0x0040A385, scStudy) // Pertinent Other Evidence Sequence
	}

	// SR Document Content: the root container and its template.
	var tmpl dataset
	tmpl.str(0x00080105, "CS", "DCMR")
	tmpl.str(0x0040DB00, "CS", "1500")
	d.seq(0x0040A504, tmpl)
	root := c.content()
	root.attrs(&d)
	b, err := part10(Comprehensive3DSRStorage, c.u.SRInstance, d)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}

// scRef references the SC built with this SR.
func (c *builder) scRef() dataset {
	var d dataset
	d.str(0x00081150, "UI", SecondaryCaptureStorage)
	d.str(0x00081155, "UI", c.u.SCInstance)
	return d
}
