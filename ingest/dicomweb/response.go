package dicomweb

import (
	"encoding/json"
	"net/http"
)

// Failure reasons of a FailedSOPSequence item (PS3.18 table 10.5.3-1 and
// the C-STORE statuses of PS3.4 it borrows from).
const (
	// ReasonProcessing: processing failure (an I/O error of the receiver).
	ReasonProcessing uint16 = 0x0110
	// ReasonSOPClass: the SOP class is not accepted by this receiver.
	ReasonSOPClass uint16 = 0x0122
	// ReasonResources: out of resources (disk full, too many at once, too
	// large); the sender may try again later.
	ReasonResources uint16 = 0xA700
	// ReasonMismatch: the data set does not match the SOP class, or its
	// Study Instance UID not the one in the request URL.
	ReasonMismatch uint16 = 0xA900
	// ReasonUnderstand: cannot understand (not a complete DICOM Part 10
	// file, or a part that is not application/dicom).
	ReasonUnderstand uint16 = 0xC000
)

// result is the outcome of one part.
type result struct {
	inst   Instance
	reason uint16 // 0: stored
	// wrongType: the part is not application/dicom.
	wrongType bool
}

type jsonAttr struct {
	VR    string `json:"vr"`
	Value []any  `json:"Value,omitempty"`
}

// storeResponse is the PS3.18 store instances response in DICOM JSON.
func storeResponse(results []result) map[string]jsonAttr {
	var ok, failed []any
	for _, r := range results {
		item := map[string]jsonAttr{}
		if r.inst.SOPClassUID != "" {
			item["00081150"] = jsonAttr{VR: "UI", Value: []any{r.inst.SOPClassUID}}
		}
		if r.inst.SOPInstanceUID != "" {
			item["00081155"] = jsonAttr{VR: "UI", Value: []any{r.inst.SOPInstanceUID}}
		}
		if r.reason == 0 {
			ok = append(ok, item)
			continue
		}
		item["00081197"] = jsonAttr{VR: "US", Value: []any{r.reason}}
		failed = append(failed, item)
	}
	resp := map[string]jsonAttr{}
	if len(failed) > 0 {
		resp["00081198"] = jsonAttr{VR: "SQ", Value: failed}
	}
	if len(ok) > 0 {
		resp["00081199"] = jsonAttr{VR: "SQ", Value: ok}
	}
	return resp
}

// responseStatus is the HTTP status of a request whose parts all reached
// an outcome: 200 all stored, 202 some, 409 none (415 when every failure
// was a part that is not application/dicom).
func responseStatus(results []result, wrongType int) int {
	stored := 0
	for _, r := range results {
		if r.reason == 0 {
			stored++
		}
	}
	switch {
	case len(results) == 0:
		return http.StatusBadRequest
	case stored == len(results):
		return http.StatusOK
	case stored > 0:
		return http.StatusAccepted
	case wrongType == len(results):
		return http.StatusUnsupportedMediaType
	default:
		return http.StatusConflict
	}
}

func writeJSON(w http.ResponseWriter, status int, results []result) {
	w.Header().Set("Content-Type", "application/dicom+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(storeResponse(results))
}
