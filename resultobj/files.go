package resultobj

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFiles writes a film's objects into dir as <SOP Instance UID>.dcm
// (sr first, then sc if built), each written to a temporary name, synced,
// then renamed, so a reader of dir never sees half a file. The names are
// the objects' own UIDs, never anything a sender chose. It returns the
// paths written.
func WriteFiles(dir string, objs *Objects) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("resultobj: write files: %w", err)
	}
	var paths []string
	for _, f := range []struct {
		uid  string
		data []byte
	}{{objs.UIDs.SRInstance, objs.SR}, {objs.UIDs.SCInstance, objs.SC}} {
		if len(f.data) == 0 {
			continue
		}
		p := filepath.Join(dir, f.uid+".dcm")
		if err := writeAtomic(p, f.data); err != nil {
			return paths, fmt.Errorf("resultobj: write files: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".resultobj-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
