// Package resultobj builds the DICOM objects that return a scored film's
// result into its study, for a PACS to store beside the film: a
// Comprehensive 3D SR following TID 1500 (Measurement Report) with the
// COVID-19 likelihood, each model's score, the priority, the algorithm and
// its thresholds, and a Secondary Capture of the heatmap overlay with "NOT
// FOR DIAGNOSTIC USE" and the score burned in. Both are Part 10 files in
// explicit VR little endian, written by this package's own small encoder.
//
// Use:
//
//	src, err := resultobj.ReadSourceFile(path, decode.Limits{...}) // or ReadSource
//	objs, err := resultobj.Build(src, result, overlayPNG, resultobj.Options{UIDRoot: root})
//	// objs.SR, objs.SC (nil without an overlay), objs.UIDs
//	paths, err := resultobj.WriteFiles(dir, objs)
//
// Build is a pure function: the same film, result and options give the
// same bytes. The objects' UIDs derive from the source film's UIDs and the
// model set under Options.UIDRoot (package uid), so a film scored again
// by the same models yields objects with the same SOP Instance UIDs, which
// a PACS stores as a replacement rather than a second copy.
//
// The objects carry the patient and study attributes of the film: they are
// clinical output. Nothing in this package logs, and SourceFilm formats
// and logs without its identifying fields. The SR content tree and every
// code are documented in docs/results-in-pacs.md.
package resultobj
