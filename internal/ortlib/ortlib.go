// Package ortlib locates the ONNX Runtime shared library.
package ortlib

import (
	"fmt"
	"os"
	"path/filepath"
)

// Version is the ONNX Runtime release whose C API onnxruntime_go v1.27.0 is
// built against; the library must be this version.
const Version = "1.24.1"

// Candidates lists where the library is looked for, in order, when the
// config names none.
func Candidates() []string {
	var c []string
	if p := os.Getenv("TRIAGED_ORT_LIB"); p != "" {
		c = append(c, p)
	}
	if exe, err := os.Executable(); err == nil {
		c = append(c, filepath.Join(filepath.Dir(exe), "..", "lib", "triaged", "libonnxruntime.so.1"))
	}
	c = append(c, "/usr/lib/triaged/libonnxruntime.so.1")
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if cache != "" {
		c = append(c, filepath.Join(cache, "triaged", "onnxruntime-"+Version, "libonnxruntime.so.1"))
	}
	return c
}

// Find returns the configured library path, or the first candidate that exists.
func Find(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("onnxruntime.library %s: %w", configured, err)
		}
		return configured, nil
	}
	for _, p := range Candidates() {
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	return "", fmt.Errorf("ONNX Runtime %s library not found (looked in %v); run `make ort` or set onnxruntime.library", Version, Candidates())
}
