package uid

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, s := range []string{"1.2.3", "0.0", "2.25.123", "1.2.840.10008.5.1.4.1.1.88.34", strings.Repeat("1", 64)} {
		if err := Valid(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"", "1..2", ".1", "1.", "1.02", "1.2a", "1.2 ", strings.Repeat("1", 65), "1.-2"} {
		if Valid(s) == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestValidRoot(t *testing.T) {
	if err := ValidRoot("1.2.826.0.1.3680043.10.999"); err != nil {
		t.Error(err)
	}
	long := "1." + strings.Repeat("9", MaxRootLen-2)
	if err := ValidRoot(long); err != nil {
		t.Errorf("a root of %d characters: %v", len(long), err)
	}
	if ValidRoot(long+"9") == nil {
		t.Error("a root leaving fewer than MinHashDigits digits was accepted")
	}
	if ValidRoot("1.2.03") == nil || ValidRoot("") == nil {
		t.Error("invalid roots accepted")
	}
}

func TestDerive(t *testing.T) {
	a, err := Derive("", "sr", "1.2.3", "ms-1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Derive(DefaultRoot, "sr", "1.2.3", "ms-1")
	c, _ := Derive("", "sr", "1.2.3", "ms-2")
	d, _ := Derive("", "sr1.2.3", "ms-1")
	if a != b {
		t.Error("empty root is not the default")
	}
	if a == c || a == d {
		t.Error("different inputs gave the same UID")
	}
	if !strings.HasPrefix(a, "2.25.") || Valid(a) != nil || len(a) > 44 {
		t.Errorf("%s", a)
	}
	root := "1." + strings.Repeat("9", MaxRootLen-2)
	e, err := Derive(root, "x")
	if err != nil || len(e) != MaxLen || Valid(e) != nil {
		t.Errorf("%s (%d): %v", e, len(e), err)
	}
	if _, err := Derive("1.02", "x"); err == nil {
		t.Error("invalid root accepted")
	}
}

// FuzzDerive: whatever the root and parts, Derive either refuses the root
// or returns a valid UID under it.
func FuzzDerive(f *testing.F) {
	f.Add("2.25", "sr", "1.2.3")
	f.Add("1.2.826.0.1.3680043.10.999", "sc", "")
	f.Add("1.02", "x", "y")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, root, p1, p2 string) {
		u, err := Derive(root, p1, p2)
		if err != nil {
			if root != "" && ValidRoot(root) == nil {
				t.Fatalf("valid root %q refused: %v", root, err)
			}
			return
		}
		if err := Valid(u); err != nil {
			t.Fatalf("Derive(%q) = %q: %v", root, u, err)
		}
		if root != "" && !strings.HasPrefix(u, root+".") {
			t.Fatalf("%q not under %q", u, root)
		}
		if v, _ := Derive(root, p1, p2); v != u {
			t.Fatal("not deterministic")
		}
	})
}
