package triage

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/triaged/triaged/internal/ortlib"
)

// ORTVersion is the ONNX Runtime release the library must be.
const ORTVersion = ortlib.Version

// FindLibrary returns the configured library path, or the first candidate
// that exists.
func FindLibrary(configured string) (string, error) { return ortlib.Find(configured) }

var (
	envOnce sync.Once
	envErr  error
	envLib  string
)

// InitRuntime loads the ONNX Runtime library once per process. Later calls
// with another path fail: the library cannot be swapped in a running process.
func InitRuntime(configured string) (string, error) {
	envOnce.Do(func() {
		lib, err := FindLibrary(configured)
		if err != nil {
			envErr = err
			return
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			envErr = fmt.Errorf("initialise ONNX Runtime from %s: %w", lib, err)
			return
		}
		envLib = lib
	})
	if envErr != nil {
		return "", envErr
	}
	if configured != "" && filepath.Clean(configured) != envLib {
		return envLib, errors.New("ONNX Runtime already loaded from " + envLib + "; restart to use " + configured)
	}
	return envLib, nil
}

// RuntimeVersion is the loaded library's version string.
func RuntimeVersion() string {
	if !ort.IsInitialized() {
		return ""
	}
	return ort.GetVersion()
}
