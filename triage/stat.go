package triage

import "strings"

// IsStat is the one rule for "someone already asked for this film first":
// the DICOM Requested Procedure / Study Priority values STAT and HIGH, or a
// sender's hint naming one of triaged's own positive priorities (URGENT,
// CRITICAL), in any case. Queueing puts such films first and Classify
// escalates a positive one to critical; both ask this function.
func IsStat(p string) bool {
	switch strings.ToUpper(strings.TrimSpace(p)) {
	case "STAT", "HIGH", "URGENT", "CRITICAL":
		return true
	}
	return false
}
