// Package uid checks DICOM unique identifiers and derives deterministic ones
// under a UID root, so that the same inputs (a source film's SOP Instance
// UID, a model set, an object kind) always give the same UID: a film scored
// again by the same models replaces its result objects instead of adding
// more. It depends on the standard library only, so config can use it.
package uid

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// DefaultRoot is the root used when none is configured: 2.25 is the arc
// under which a UUID written as one decimal integer is a valid UID
// (PS3.5 B.2, ISO/IEC 9834-8), so no registered organisation root is
// needed. Derived UIDs under it are 2.25.<decimal of a 128-bit hash>.
const DefaultRoot = "2.25"

// MaxLen is the longest UID DICOM allows (PS3.5 9.1).
const MaxLen = 64

// MinHashDigits is the fewest hash digits a derived UID may carry: a root
// must leave at least this much room. 24 decimal digits (about 80 bits)
// keep the chance of two films colliding negligible for any archive
// (about 1e-12 for a billion objects).
const MinHashDigits = 24

// MaxRootLen is the longest configurable root: a dot and MinHashDigits
// must still fit in MaxLen.
const MaxRootLen = MaxLen - 1 - MinHashDigits

// Valid reports why s is not a valid DICOM UID, or nil: 1 to 64
// characters, components of digits separated by single dots, no component
// empty or with a leading zero (a lone 0 is allowed).
func Valid(s string) error {
	if s == "" {
		return errors.New("empty UID")
	}
	if len(s) > MaxLen {
		return fmt.Errorf("UID is %d characters, more than %d", len(s), MaxLen)
	}
	return components(s)
}

// ValidRoot reports why root cannot serve as a UID root, or nil: a valid
// UID of at most MaxRootLen characters, so derived UIDs keep at least
// MinHashDigits digits of hash.
func ValidRoot(root string) error {
	if root == "" {
		return errors.New("empty UID root")
	}
	if err := components(root); err != nil {
		return err
	}
	if len(root) > MaxRootLen {
		return fmt.Errorf("UID root is %d characters; at most %d leave room for the %d-digit suffix within %d", len(root), MaxRootLen, MinHashDigits, MaxLen)
	}
	return nil
}

func components(s string) error {
	for i, c := range strings.Split(s, ".") {
		switch {
		case c == "":
			return fmt.Errorf("UID component %d is empty", i+1)
		case len(c) > 1 && c[0] == '0':
			return fmt.Errorf("UID component %d has a leading zero", i+1)
		}
		for _, r := range c {
			if r < '0' || r > '9' {
				return fmt.Errorf("UID component %d has a character other than a digit", i+1)
			}
		}
	}
	return nil
}

// Derive returns root + "." + the decimal of the first 128 bits of
// SHA-256 over root and parts (each length-prefixed, so ("ab","c") and
// ("a","bc") differ), truncated to the digits that fit in 64 characters.
// An empty root means DefaultRoot. The root must pass ValidRoot.
func Derive(root string, parts ...string) (string, error) {
	if root == "" {
		root = DefaultRoot
	}
	if err := ValidRoot(root); err != nil {
		return "", err
	}
	h := sha256.New()
	for _, p := range append([]string{root}, parts...) {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	sum := h.Sum(nil)
	n := new(big.Int).SetBytes(sum[:16])
	d := n.String() // no leading zero: big.Int never writes one
	if room := MaxLen - len(root) - 1; len(d) > room {
		d = d[:room]
	}
	return root + "." + d, nil
}
