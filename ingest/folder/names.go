package folder

import "unicode/utf8"

// nameMax is the longest file name Linux file systems take (NAME_MAX).
const nameMax = 255

// fitName returns name, or, when name plus a suffix of reserve bytes would
// not fit in a file name, a shortened name ending in .<film ID> (so it
// stays unique), cut at a UTF-8 boundary. A dropped file may have a name
// as long as the file system allows; its reason file and clash suffixes
// must still fit.
func fitName(name, id string, reserve int) string {
	if len(name)+reserve <= nameMax {
		return name
	}
	keep := nameMax - reserve - len(id) - 1
	for keep > 0 && !utf8.RuneStart(name[keep]) {
		keep--
	}
	return name[:max(keep, 0)] + "." + id
}
