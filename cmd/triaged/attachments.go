package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/publish"
)

var filmIDRe = regexp.MustCompile(`^[0-9a-f]{1,64}$`)

// attachmentExt maps the content types triaged publishes to file extensions;
// anything else is not saved.
var attachmentExt = map[string]string{"image/png": "png", "application/x-npy": "npy"}

// saveAttachments fetches a message's attachments into dir, each checked
// against the size and sha256 the message gives. File names are built only
// from the stream sequence, the daemon's own film ID and the fixed method
// and kind vocabularies, never from DICOM values (UIDs are untrusted
// input): <seq>-<film id>-<method>-<kind>.<ext>. Existing files are kept.
func saveAttachments(ctx context.Context, js jetstream.JetStream, dir string, seq uint64, data []byte, stderr io.Writer) {
	var m struct {
		Source      publish.Source       `json:"source"`
		Attachments []publish.Attachment `json:"attachments"`
	}
	if err := json.Unmarshal(data, &m); err != nil || len(m.Attachments) == 0 {
		return
	}
	film := m.Source.FilmID
	if !filmIDRe.MatchString(film) {
		film = "film"
	}
	for _, a := range m.Attachments {
		ext, ok := attachmentExt[a.ContentType]
		if !ok || (a.Method != "cam" && a.Method != "occlusion") || (a.Kind != "overlay" && a.Kind != "raw") {
			fmt.Fprintf(stderr, "triaged: message %d: skipping an attachment of unknown kind\n", seq)
			continue
		}
		path := filepath.Join(dir, fmt.Sprintf("%06d-%s-%s-%s.%s", seq, film, a.Method, a.Kind, ext))
		if _, err := os.Lstat(path); err == nil {
			continue
		}
		b, err := publish.FetchAttachment(ctx, js, a)
		if err != nil {
			fmt.Fprintf(stderr, "triaged: message %d: %v\n", seq, err)
			continue
		}
		if err := writeNew(path, b); err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			continue
		}
		fmt.Fprintf(stderr, "saved %s\n", path)
	}
}

// writeNew writes a file completely under a temporary name, then links it
// into place, so a reader never sees half a file and nothing is overwritten.
func writeNew(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".save-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}
