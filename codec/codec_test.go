package codec

import (
	"strings"
	"testing"
)

// Every codec library this build expects is installed where `make test`
// runs (the build installs them); each loads.
func TestLibrariesLoad(t *testing.T) {
	for _, l := range Libraries() {
		if l.Err != nil {
			t.Errorf("%s: %v", l.Codec, l.Err)
		}
	}
}

// A library that is not installed gives a MissingError naming the Debian
// package to install, and the daemon keeps running.
func TestMissingLibraryNamesPackage(t *testing.T) {
	l := &library{codec: "JPEG 2000", soname: "libopenjp2.so.999", pkg: "libopenjp2-7", load: libOpenJPEG.load}
	err := l.open()
	if !IsMissing(err) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "apt-get install libopenjp2-7") || !strings.Contains(err.Error(), "libopenjp2.so.999") {
		t.Fatalf("message does not say what to install: %v", err)
	}
	if l.open() != err {
		t.Fatal("the failure is not remembered")
	}
}
