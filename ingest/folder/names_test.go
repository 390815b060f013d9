package folder

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFitName(t *testing.T) {
	id := "0123456789abcdef"
	if got := fitName("a.dcm", id, 16); got != "a.dcm" {
		t.Fatal(got)
	}
	long := strings.Repeat("é", 125) + ".dcm" // 254 bytes
	got := fitName(long, id, 16)
	if len(got)+16 > nameMax || !strings.HasSuffix(got, "."+id) || !utf8.ValidString(got) {
		t.Fatalf("%d bytes: %q", len(got), got)
	}
}
