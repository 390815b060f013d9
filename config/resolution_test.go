package config

import (
	"strings"
	"testing"
)

func TestResolutionDefaultIsExact(t *testing.T) {
	c := Default()
	if n := c.Decode.Resolution.ReducedMinSide(); n != 0 {
		t.Fatalf("default decode.resolution reduces to %d", n)
	}
	if ps := c.ValidateResolution(); len(ps) > 0 {
		t.Fatal(ps)
	}
}

func TestResolutionParse(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want int
	}{
		{"decode:\n  resolution:\n    mode: reduced\n", DefaultResolutionFloor},
		{"decode:\n  resolution:\n    mode: reduced\n    floor: 512\n", 512},
		{"decode:\n  resolution:\n    mode: exact\n    floor: 512\n", 0},
	} {
		c, err := Parse([]byte(tc.yaml), "/etc/triaged")
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if got := c.Decode.Resolution.ReducedMinSide(); got != tc.want {
			t.Errorf("%q: reduced min side %d, want %d", tc.yaml, got, tc.want)
		}
	}
}

func TestResolutionRefusals(t *testing.T) {
	for yaml, want := range map[string]string{
		"decode:\n  resolution:\n    mode: half\n":                    "decode.resolution.mode",
		"decode:\n  resolution:\n    mode: reduced\n    floor: 100\n": "decode.resolution.floor",
		"decode:\n  resolution:\n    mode: reduced\n    levels: 2\n":  "levels",
	} {
		_, err := Parse([]byte(yaml), "/etc/triaged")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %s", yaml, err, want)
		}
	}
}
