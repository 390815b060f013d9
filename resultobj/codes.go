package resultobj

// code is a coded entry: value, coding scheme designator, meaning.
type code struct{ value, scheme, meaning string }

func (c code) item() dataset {
	var d dataset
	d.str(0x00080100, "SH", c.value)
	d.str(0x00080102, "SH", c.scheme)
	d.str(0x00080104, "LO", c.meaning)
	return d
}

// PrivateScheme is the coding scheme designator of the few concepts no
// standard terminology names precisely (the triage priority and its values,
// the probability concept): a private scheme, "99" prefixed as PS3.16 8.2
// requires, declared in each SR's Coding Scheme Identification Sequence.
const PrivateScheme = "99TRIAGED"

// The codes of the SR, all in docs/results-in-pacs.md.
var (
	// TID 1500 structure (DCM: DICOM Content Mapping Resource, PS3.16 D).
	codeReport            = code{"126000", "DCM", "Imaging Measurement Report"}
	codeLanguage          = code{"121049", "DCM", "Language of Content Item and Descendants"}
	codeEnglish           = code{"en", "RFC5646", "English"}
	codeObserverType      = code{"121005", "DCM", "Observer Type"}
	codeDevice            = code{"121007", "DCM", "Device"}
	codeDeviceUID         = code{"121012", "DCM", "Device Observer UID"}
	codeDeviceName        = code{"121013", "DCM", "Device Observer Name"}
	codeDeviceMfr         = code{"121014", "DCM", "Device Observer Manufacturer"}
	codeDeviceModel       = code{"121015", "DCM", "Device Observer Model Name"}
	codeDeviceSerial      = code{"121016", "DCM", "Device Observer Serial Number"}
	codeProcedureReported = code{"121058", "DCM", "Procedure reported"}
	codeImageLibrary      = code{"111028", "DCM", "Image Library"}
	codeImageLibraryGroup = code{"126200", "DCM", "Image Library Group"}
	codeModality          = code{"121139", "DCM", "Modality"}
	codeImagingMeas       = code{"126010", "DCM", "Imaging Measurements"}
	codeMeasGroup         = code{"125007", "DCM", "Measurement Group"}
	codeTrackingID        = code{"112039", "DCM", "Tracking Identifier"}
	codeTrackingUID       = code{"112040", "DCM", "Tracking Unique Identifier"}
	codeFinding           = code{"121071", "DCM", "Finding"}
	codeFindingSite       = code{"363698007", "SCT", "Finding Site"}
	codeAlgorithmName     = code{"111001", "DCM", "Algorithm Name"}
	codeAlgorithmVersion  = code{"111003", "DCM", "Algorithm Version"}
	codeAlgorithmParams   = code{"111002", "DCM", "Algorithm Parameters"}
	codeDerivation        = code{"121401", "DCM", "Derivation"}
	codeMean              = code{"373098007", "SCT", "Mean"}
	codeQualEvaluations   = code{"C0034375", "UMLS", "Qualitative Evaluations"}
	codeComment           = code{"121106", "DCM", "Comment"}
	codeIllustration      = code{"121200", "DCM", "Illustration of ROI"}

	// Clinical content (SCT: SNOMED CT).
	// Procedure reported: TID 1500 takes it from CID 100 (Quantitative
	// Diagnostic Imaging Procedures), which has no radiography code;
	// "Plain chest X-ray" (399208008, SCT) would be more specific, but
	// PixelMed's validator refuses a code outside the group, so the
	// group's generic "Imaging procedure" it is.
	codeImagingProcedure = code{"363679005", "SCT", "Imaging procedure"}
	codeLung             = code{"39607008", "SCT", "Lung"}
	// 840539006 is the SNOMED CT concept COVID-19 value sets use for the
	// disease (there is no pre-coordinated "COVID-19 pneumonia" in the
	// international release). Its fully specified name, "Disease caused by
	// severe acute respiratory syndrome coronavirus 2", is 65 characters,
	// one more than Code Meaning (LO) allows; "COVID-19" is its preferred
	// term in the US edition.
	codeCOVID19 = code{"840539006", "SCT", "COVID-19"}

	// UCUM: a probability is dimensionless; {probability} is UCUM's
	// annotation form of the unit 1, which viewers print as the meaning.
	unitProbability = code{"{probability}", "UCUM", "probability"}

	// Private (PrivateScheme).
	codeProbability = code{"COVIDPROB", PrivateScheme, "Probability of COVID-19"}
	codePriority    = code{"PRIORITY", PrivateScheme, "Triage priority"}
	codeCritical    = code{"CRITICAL", PrivateScheme, "Critical"}
	codeUrgent      = code{"URGENT", PrivateScheme, "Urgent"}
	codeRoutine     = code{"ROUTINE", PrivateScheme, "Routine"}
)

// modalityCodes are the DCM codes (CID 29) of the modalities chest films
// come in; others are left out of the image library entry.
var modalityCodes = map[string]code{
	"CR": {"CR", "DCM", "Computed Radiography"},
	"DX": {"DX", "DCM", "Digital Radiography"},
	"OT": {"OT", "DCM", "Other"},
}

func priorityCode(p string) (code, bool) {
	switch p {
	case "critical":
		return codeCritical, true
	case "urgent":
		return codeUrgent, true
	case "routine":
		return codeRoutine, true
	}
	return code{}, false
}
