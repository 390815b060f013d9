package resultobj

import (
	"encoding/binary"
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

// Object is one result object with what a sender needs to offer it: its
// SOP Class (a C-STORE presentation context, a STOW-RS part), its SOP
// Instance UID (a status to check, a re-send to recognise) and transfer
// syntax.
type Object struct {
	SOPClassUID, SOPInstanceUID, TransferSyntaxUID string
	// File is the Part 10 file (STOW-RS, an outbox folder).
	File []byte
}

// List is the objects built, SR first.
func (objs *Objects) List() []Object {
	var l []Object
	if len(objs.SR) > 0 {
		l = append(l, Object{Comprehensive3DSRStorage, objs.UIDs.SRInstance, tsExplicitLE, objs.SR})
	}
	if len(objs.SC) > 0 {
		l = append(l, Object{SecondaryCaptureStorage, objs.UIDs.SCInstance, tsExplicitLE, objs.SC})
	}
	return l
}

// DataSet is the object without preamble and file meta information: what
// a C-STORE request carries as its data set (PS3.7 9.3.1), in
// TransferSyntaxUID.
func (o Object) DataSet() ([]byte, error) {
	f := o.File
	if len(f) < 144 || string(f[128:132]) != "DICM" || string(f[132:136]) != "\x02\x00\x00\x00" || string(f[136:138]) != "UL" {
		return nil, fmt.Errorf("resultobj: object %s is not a Part 10 file written here", o.SOPClassUID)
	}
	end := 144 + int(binary.LittleEndian.Uint32(f[140:144]))
	if end > len(f) {
		return nil, fmt.Errorf("resultobj: object %s: file meta group longer than the file", o.SOPClassUID)
	}
	return f[end:], nil
}
