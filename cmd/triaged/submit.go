package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/config"
	jsingest "github.com/triaged/triaged/ingest/jetstream"
)

// submitHeadroom is kept free below the server's max payload for headers
// (ours, and the dead-letter copy's if it comes to that).
const submitHeadroom = 8 << 10

// submitted is printed for every file, one JSON line each.
type submitted struct {
	File      string `json:"file"`
	Mode      string `json:"mode,omitempty"` // inline or object
	Size      int64  `json:"size,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	Stream    string `json:"stream,omitempty"`
	Sequence  uint64 `json:"sequence,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"` // the stream already had it (a re-submit)
	Error     string `json:"error,omitempty"`
}

func cmdSubmit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("submit", stdout, stderr)
	cfgPath := fs.configFlag("NATS address and security, ingest subject and bucket")
	server := fs.String("server", "", "NATS URL (default from the config)")
	subject := fs.String("subject", "", "ingest subject (default ingest.nats.subject)")
	bucket := fs.String("bucket", "", "object store bucket for large films (default ingest.nats.object_bucket)")
	priority := fs.String("priority", "", "Triaged-Priority header: STAT, HIGH, ROUTINE... (default: the film's own DICOM priority)")
	source := fs.String("source", "", "Triaged-Source header: who sends the films")
	inlineMax := fs.String("inline-max", "auto", "largest film sent inside the message (auto: the server's max payload less 8KiB; 0: always the object store)")
	timeout := fs.Duration("timeout", time.Minute, "per film")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return fs.usageError()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	if *subject == "" {
		*subject = cfg.Ingest.NATS.Subject
	}
	if strings.ContainsAny(*subject, "*>") {
		fmt.Fprintf(stderr, "triaged: subject %q has wildcards; give one to publish to with -subject\n", *subject)
		return 2
	}
	if *bucket == "" {
		*bucket = cfg.Ingest.NATS.ObjectBucket
	}
	files, err := collectFiles(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "triaged: no files to submit")
		return 1
	}

	nc, js, err := dialJetStream(cfg, *server, "triaged submit")
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	defer nc.Close()
	limit := nc.MaxPayload() - submitHeadroom
	if *inlineMax != "auto" {
		v, err := config.ParseByteSize(*inlineMax)
		if err != nil {
			fmt.Fprintf(stderr, "triaged: -inline-max: %v\n", err)
			return 2
		}
		limit = min(int64(v), limit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	s := &submitter{js: js, subject: *subject, bucket: *bucket, priority: strings.ToUpper(*priority), source: *source, inlineMax: limit, timeout: *timeout}
	bar := newProgress(stderr, len(files))
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	failed := 0
	for _, f := range files {
		if ctx.Err() != nil {
			failed++
			enc.Encode(submitted{File: f, Error: "interrupted"})
			continue
		}
		r := s.submit(ctx, f)
		if r.Error != "" {
			failed++
			bar.clear()
			fmt.Fprintf(stderr, "triaged: %s: %s\n", f, r.Error)
		}
		enc.Encode(r)
		bar.add(r.Size, r.Error != "")
	}
	bar.done()
	if failed > 0 {
		fmt.Fprintf(stderr, "triaged: %d of %d films not submitted\n", failed, len(files))
		return 1
	}
	return 0
}

// collectFiles expands directories (recursively, skipping hidden entries)
// into a sorted list of regular files.
func collectFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		var in []string
		err = filepath.WalkDir(a, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != a && strings.HasPrefix(e.Name(), ".") {
				if e.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if e.Type().IsRegular() {
				in = append(in, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(in)
		out = append(out, in...)
	}
	return out, nil
}

type submitter struct {
	js               jetstream.JetStream
	subject, bucket  string
	priority, source string
	inlineMax        int64
	timeout          time.Duration
	obs              jetstream.ObjectStore
	objTTL           time.Duration
}

func (s *submitter) submit(ctx context.Context, path string) submitted {
	r := submitted{File: path}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	f, err := os.Open(path)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		r.Error = fmt.Sprintf("read: %v", err)
		return r
	}
	if size == 0 {
		r.Error = "empty file"
		return r
	}
	sum := hex.EncodeToString(h.Sum(nil))
	r.Size, r.MessageID = size, sum

	m := nats.NewMsg(s.subject)
	// The content hash as message ID: submitting the same film again (a
	// re-run after a partial failure) is dropped by the stream.
	m.Header.Set(nats.MsgIdHdr, sum)
	m.Header.Set(jsingest.HeaderFilename, filepath.Base(path))
	if s.priority != "" {
		m.Header.Set(jsingest.HeaderPriority, s.priority)
	}
	if s.source != "" {
		m.Header.Set(jsingest.HeaderSource, s.source)
	}
	if size <= s.inlineMax {
		r.Mode = "inline"
		if m.Data, err = os.ReadFile(path); err != nil {
			r.Error = fmt.Sprintf("read: %v", err)
			return r
		}
	} else {
		r.Mode = "object"
		if err := s.upload(ctx, f, sum, size); err != nil {
			r.Error = err.Error()
			return r
		}
		m.Data, _ = json.Marshal(jsingest.ObjectRef{Schema: jsingest.ObjectRefSchema, Bucket: s.bucket, Name: sum, Size: size, SHA256: sum})
	}
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			err = fmt.Errorf("no stream captures subject %s (start a daemon with ingest.nats.enabled, which creates it): %w", s.subject, err)
		}
		r.Error = fmt.Sprintf("publish: %v", err)
		return r
	}
	r.Stream, r.Sequence, r.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
	return r
}

// upload puts the film into the object store under its content hash,
// unless it is already there and not close to expiring.
func (s *submitter) upload(ctx context.Context, f *os.File, sum string, size int64) error {
	if s.obs == nil {
		obs, err := s.js.ObjectStore(ctx, s.bucket)
		if err != nil {
			return fmt.Errorf("object store bucket %s (a daemon with ingest.nats.enabled creates it): %w", s.bucket, err)
		}
		if st, err := obs.Status(ctx); err == nil {
			s.objTTL = st.TTL()
		}
		s.obs = obs
	}
	digest, _ := jsingest.ObjectDigest(sum)
	if info, err := s.obs.GetInfo(ctx, sum); err == nil && info.Digest == digest && int64(info.Size) == size &&
		(s.objTTL == 0 || time.Since(info.ModTime) < s.objTTL/2) {
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: sum, Description: "triaged film"}, f); err != nil {
		return fmt.Errorf("upload to bucket %s: %w", s.bucket, err)
	}
	return nil
}
