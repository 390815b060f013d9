package resultobj

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/triaged/triaged/resultobj/uid"
)

// Values copied from a source film are made valid for their VR before they
// are written: a film with a malformed date or an over-long name still gets
// result objects, with the offending value emptied or shortened, rather
// than objects a PACS refuses.

var (
	daRe = regexp.MustCompile(`^[0-9]{8}$`)
	tmRe = regexp.MustCompile(`^[0-9]{2}([0-9]{2}([0-9]{2}(\.[0-9]{1,6})?)?)?$`)
)

// maxChars is the longest value of a VR in characters (PS3.5 6.2).
var maxChars = map[string]int{"AE": 16, "CS": 16, "SH": 16, "LO": 64, "ST": 1024, "LT": 10240}

// text cleans a free text value (SH, LO, PN, ST, LT): valid UTF-8, no
// control characters (which would make it invalid, and for SH/LO/PN,
// backslashes, which would split it into several values), trailing spaces
// trimmed, cut to the VR's length on a character boundary.
func text(vr, s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\\' && (vr == "SH" || vr == "LO" || vr == "PN"):
			return ' '
		case r < 0x20 && !(vr == "LT" || vr == "ST") && r != 0x1b:
			return -1
		case r == 0x1b: // escape sequences belong to ISO 2022 charsets, not UTF-8
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, " \x00")
	if vr == "PN" {
		return personName(s)
	}
	if n, ok := maxChars[vr]; ok && utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n])
	}
	return s
}

// personName keeps a PN within its form: at most three component groups
// (alphabetic, ideographic, phonetic), each of at most five components and
// 64 characters.
func personName(s string) string {
	groups := strings.SplitN(s, "=", 4)
	if len(groups) > 3 {
		groups = groups[:3]
	}
	for i, g := range groups {
		comps := strings.Split(g, "^")
		if len(comps) > 5 {
			comps = comps[:5]
		}
		g = strings.Join(comps, "^")
		if utf8.RuneCountInString(g) > 64 {
			g = string([]rune(g)[:64])
		}
		groups[i] = strings.TrimRight(g, " ")
	}
	return strings.TrimRight(strings.Join(groups, "="), "=")
}

// da is a date value or empty.
func da(s string) string {
	s = strings.TrimSpace(s)
	if daRe.MatchString(s) {
		return s
	}
	return ""
}

// tm is a time value or empty. Some senders write HH:MM:SS (the retired
// ACR-NEMA form); the colons are dropped.
func tm(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	if tmRe.MatchString(s) {
		return s
	}
	return ""
}

// sex is M, F, O or empty.
func sex(s string) string {
	switch s = strings.ToUpper(strings.TrimSpace(s)); s {
	case "M", "F", "O":
		return s
	}
	return ""
}

// cs cleans a code string: upper-case letters, digits, space and
// underscore, at most 16 characters.
func cs(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.Map(func(r rune) rune {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == ' ' || r == '_' {
			return r
		}
		return -1
	}, s)
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}

// ascii reports whether every string is 7-bit: the default character
// repertoire, which needs no Specific Character Set.
func ascii(ss ...string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}

// checkUID is uid.Valid with the attribute named.
func checkUID(name, v string) error {
	if err := uid.Valid(v); err != nil {
		return &InputError{Field: name, Err: err}
	}
	return nil
}

// InputError says which input made the objects impossible to build.
type InputError struct {
	Field string
	Err   error
}

func (e *InputError) Error() string { return "resultobj: " + e.Field + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }
