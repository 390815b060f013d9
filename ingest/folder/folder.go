// Package folder is the drop-folder intake: it watches a folder with
// fsnotify (and rescans it periodically), waits until a file is completely
// written, claims it by an atomic rename into a processing area, and later
// moves it to done/ or, with a reason file, to failed/. It never deletes.
// Its films follow the contract of package ingest.
package folder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/publish"
)

// Options configure one drop folder.
type Options struct {
	Path string
	// Kind names the intake in results' source ("folder" by default; a
	// spool folder of a network intake says "dimse" or "dicomweb").
	Kind string
	// Origin, if set, recovers the intake and sender from a file name
	// (spool.Origin: films received by C-STORE or STOW-RS carry both in
	// their names); "" keeps Kind.
	Origin func(name string) (kind, sender string)
	// Daemon is the daemon's version, recorded in reason files.
	Daemon        string
	ProcessingDir string // default <Path>/.processing
	DoneDir       string // default <Path>/done
	FailedDir     string // default <Path>/failed
	// Settle is how long a file must stay unchanged before it is claimed
	// when the kernel cannot confirm that nobody has it open for writing.
	Settle         time.Duration
	RescanInterval time.Duration
	Log            zerolog.Logger
}

// Folder is one watched drop folder.
type Folder struct {
	o   Options
	log zerolog.Logger

	mu        sync.Mutex
	pending   map[string]*candidate // seen, not yet settled
	ready     []string              // settled, in arrival order
	readySet  map[string]bool
	recovered []*File               // in processing: left by a crash, or released for retry
	delayed   map[*time.Timer]*File // released, waiting out their delay (RetryNow)
	wake      chan struct{}

	scanned     chan struct{} // closed after the first scan (readiness)
	unclaimed   atomic.Int64  // see Unclaimed
	scannedOnce sync.Once
}

type candidate struct {
	size       int64
	mtime      time.Time
	lastChange time.Time
}

// idSep separates the daemon's film ID from the original name in the
// processing area, so a crash loses neither.
const idSep = "--"

// Open creates the folder's working directories, checks they share
// the drop folder's filesystem (claims and moves must be atomic renames) and
// picks up whatever a previous run left in processing.
func Open(o Options) (*Folder, error) {
	o = o.WithDefaults()
	if o.Settle < 0 {
		o.Settle = 0
	}
	if o.RescanInterval <= 0 {
		o.RescanInterval = 30 * time.Second
	}
	var dev uint64
	for i, d := range []string{o.Path, o.ProcessingDir, o.DoneDir, o.FailedDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("drop folder %s: create %s: %w", o.Path, d, err)
		}
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return nil, fmt.Errorf("drop folder %s: stat %s: %w", o.Path, d, err)
		}
		if i == 0 {
			dev = st.Dev
		} else if st.Dev != dev {
			return nil, fmt.Errorf("drop folder %s: %s is on another filesystem; processing, done and failed must be on the drop folder's filesystem so moves are atomic", o.Path, d)
		}
	}
	f := &Folder{
		o:        o,
		log:      o.Log.With().Str("folder", o.Path).Logger(),
		pending:  map[string]*candidate{},
		readySet: map[string]bool{},
		wake:     make(chan struct{}, 1),
		scanned:  make(chan struct{}),
	}
	if err := f.recover(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path is the drop folder.
func (f *Folder) Path() string { return f.o.Path }

// recover queues every file left in the processing area.
func (f *Folder) recover() error {
	ents, err := os.ReadDir(f.o.ProcessingDir)
	if err != nil {
		return fmt.Errorf("drop folder %s: read processing area: %w", f.o.Path, err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		id, orig, ok := strings.Cut(name, idSep)
		if !ok || !validID(id) {
			// Not ours (an operator put it there): give it an ID.
			id, orig = newID(), name
			dst := filepath.Join(f.o.ProcessingDir, processingName(id, orig))
			if err := renameNoReplace(filepath.Join(f.o.ProcessingDir, name), dst); err != nil {
				return fmt.Errorf("drop folder %s: adopt %s: %w", f.o.Path, name, err)
			}
			name = filepath.Base(dst)
		}
		it := &File{folder: f, id: id, name: orig, path: filepath.Join(f.o.ProcessingDir, name), Recovered: true}
		if err := it.countCrash(); err != nil {
			return fmt.Errorf("drop folder %s: film %s: %w", f.o.Path, id, pathless(err))
		}
		f.recovered = append(f.recovered, it)
	}
	if len(f.recovered) > 0 {
		f.log.Warn().Int("films", len(f.recovered)).Msg("films left in processing by an earlier run will be processed again")
	}
	return nil
}

// Run watches the folder until ctx ends.
func (f *Folder) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("drop folder %s: watcher: %w", f.o.Path, err)
	}
	defer w.Close()
	if err := w.Add(f.o.Path); err != nil {
		return fmt.Errorf("drop folder %s: watch: %w", f.o.Path, err)
	}
	// Scan after the watch is in place, so no file falls between the two.
	f.scan()
	f.scannedOnce.Do(func() { close(f.scanned) })
	tick := time.NewTicker(max(10*time.Millisecond, min(100*time.Millisecond, f.o.Settle/4)))
	defer tick.Stop()
	rescan := time.NewTicker(f.o.RescanInterval)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("drop folder %s: watcher closed", f.o.Path)
			}
			name := filepath.Base(ev.Name)
			if filepath.Dir(ev.Name) != filepath.Clean(f.o.Path) || ignored(name) {
				continue
			}
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				f.mu.Lock()
				delete(f.pending, name)
				f.mu.Unlock()
				continue
			}
			f.see(name, time.Now())
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("drop folder %s: watcher closed", f.o.Path)
			}
			// An overflowed event queue loses events; a scan recovers them.
			f.log.Warn().Err(err).Msg("file watcher error; rescanning")
			f.scan()
		case <-tick.C:
			f.settle(time.Now())
		case <-rescan.C:
			f.scan()
		}
	}
}

// ignored names are hidden or temporary: a sender writes under such a name
// and renames to the final name when done.
func ignored(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return true
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".tmp", ".part", ".partial", ".crdownload", ".filepart", ".swp", ".lock":
		return true
	}
	return false
}

// scan lists the folder and notes every file not yet known.
func (f *Folder) scan() {
	ents, err := os.ReadDir(f.o.Path)
	if err != nil {
		f.log.Error().Err(err).Msg("cannot list drop folder")
		return
	}
	now := time.Now()
	stale := 0
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if ignored(e.Name()) {
			// A sender that writes under a temporary name and never renames
			// leaves a film nobody scores: count those left long enough.
			if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > unclaimedAfter {
				stale++
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(f.o.Path, e.Name()), &st); err != nil {
			continue
		}
		// A file that has not changed for a settle period is complete: the
		// startup backlog is claimed at once.
		last := time.Unix(max(st.Mtim.Sec, st.Ctim.Sec), 0)
		if last.After(now) {
			last = now
		}
		f.see(e.Name(), last)
	}
	f.settle(now)
	if prev := f.unclaimed.Swap(int64(stale)); int64(stale) > prev {
		// Counted, never named: a sender's file name may identify a patient.
		f.log.Warn().Int("files", stale).Dur("older_than", unclaimedAfter).
			Msg("files in the drop folder are never claimed because of their names (hidden, or a temporary suffix such as .tmp or .part): the sender must rename them when complete")
	}
}

// unclaimedAfter is how long a file under an ignored name may sit in the
// drop folder before it counts as a sender's mistake.
const unclaimedAfter = 10 * time.Minute

// Unclaimed is the number of files at the last scan that sit under a name
// the folder never claims (hidden, or a temporary suffix) for longer than
// ten minutes.
func (f *Folder) Unclaimed() int { return int(f.unclaimed.Load()) }

func (f *Folder) see(name string, last time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readySet[name] {
		return
	}
	c, ok := f.pending[name]
	if !ok {
		f.pending[name] = &candidate{size: -1, lastChange: last}
		return
	}
	c.lastChange = maxTime(c.lastChange, last)
}

// settle moves candidates that are complete to the ready queue: unchanged
// for Settle, or unchanged briefly and, by the kernel's word, open for
// writing by nobody.
func (f *Folder) settle(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	moved := false
	for name, c := range f.pending {
		p := filepath.Join(f.o.Path, name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			delete(f.pending, name)
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			delete(f.pending, name)
			continue
		}
		mt := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
		if st.Size != c.size || !mt.Equal(c.mtime) {
			if c.size >= 0 { // changed since we last looked: still being written
				c.lastChange = now
			}
			c.size, c.mtime = st.Size, mt
		}
		quiet := now.Sub(c.lastChange)
		if quiet < f.o.Settle && quiet < 20*time.Millisecond {
			continue
		}
		// The kernel's word wins: a file someone still has open for writing
		// is not complete, however long the writer has paused.
		w := writers(p, st.Mode)
		if (w == writersNone && quiet >= 20*time.Millisecond) || (w != writersPresent && quiet >= f.o.Settle) {
			delete(f.pending, name)
			f.ready = append(f.ready, name)
			f.readySet[name] = true
			moved = true
		}
	}
	if moved {
		f.signal()
	}
}

// writers asks the kernel whether any process has the file open for
// writing: a read lease is granted only if none has, and refused with
// EAGAIN if one has. Where leases are not available (another owner, NFS)
// the answer is unknown and the settle time decides.
func writers(p string, mode uint32) writerState {
	if mode&unix.S_IFMT != unix.S_IFREG {
		return writersNone // links and special files are not read; they are quarantined
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return writersUnknown
	}
	defer unix.Close(fd)
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return writersPresent
		}
		return writersUnknown
	}
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
	return writersNone
}

type writerState int

const (
	writersUnknown writerState = iota
	writersNone
	writersPresent
)

func (f *Folder) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Next claims the next complete film, waiting for one if need be. Films
// left in processing come first.
func (f *Folder) Next(ctx context.Context) (ingest.Film, error) {
	it, err := f.next(ctx)
	if err != nil {
		return nil, err
	}
	return it, nil
}

func (f *Folder) next(ctx context.Context) (*File, error) {
	for {
		f.mu.Lock()
		if len(f.recovered) > 0 {
			it := f.recovered[0]
			f.recovered = f.recovered[1:]
			f.mu.Unlock()
			return it, nil
		}
		if len(f.ready) > 0 {
			name := f.ready[0]
			f.ready = f.ready[1:]
			delete(f.readySet, name)
			f.mu.Unlock()
			it, err := f.claim(name)
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					f.log.Error().Err(err).Msg("cannot claim a file; it stays in the drop folder")
				}
				continue
			}
			return it, nil
		}
		f.mu.Unlock()
		select {
		case <-f.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (f *Folder) claim(name string) (*File, error) {
	id := newID()
	dst := filepath.Join(f.o.ProcessingDir, processingName(id, name))
	if err := renameNoReplace(filepath.Join(f.o.Path, name), dst); err != nil {
		return nil, fmt.Errorf("claim a dropped file: %w", pathless(err))
	}
	return &File{folder: f, id: id, name: name, path: dst, Claimed: time.Now()}, nil
}

// requeue gives a file back for another attempt after a delay.
func (f *Folder) requeue(it *File, after time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t *time.Timer
	// The callback takes f.mu, so it sees t assigned even for a zero delay.
	t = time.AfterFunc(after, func() {
		f.mu.Lock()
		delete(f.delayed, t)
		f.recovered = append(f.recovered, it)
		f.mu.Unlock()
		f.signal()
	})
	if f.delayed == nil {
		f.delayed = map[*time.Timer]*File{}
	}
	f.delayed[t] = it
}

// RetryNow gives back at once every film waiting out a retry delay: the
// daemon calls it when the folder's disk has space again, so a film whose
// quarantine failed on a full disk does not wait out a backoff of minutes.
func (f *Folder) RetryNow() int {
	f.mu.Lock()
	n := 0
	for t, it := range f.delayed {
		if t.Stop() {
			f.recovered = append(f.recovered, it)
			n++
		}
		delete(f.delayed, t)
	}
	f.mu.Unlock()
	if n > 0 {
		f.signal()
	}
	return n
}

// marksDir, inside the processing area, holds per film the marks that
// survive a crash: <id>.decoding while the film is being decoded, and
// <id>.crashes, the number of starts that found that mark.
const marksDir = ".marks"

func (it *File) mark(kind string) string {
	return filepath.Join(it.folder.o.ProcessingDir, marksDir, it.id+"."+kind)
}

// BeginDecode durably marks the film as being decoded (file and directory
// fsynced): if the daemon dies before EndDecode, the next start counts a
// crash for this film.
func (it *File) BeginDecode() error {
	p := it.mark("decoding")
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("film %s: mark decoding: %w", it.id, pathless(err))
	}
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("film %s: mark decoding: %w", it.id, pathless(err))
	}
	err = fh.Sync()
	fh.Close()
	if err == nil {
		err = syncDir(filepath.Dir(p))
	}
	if err != nil {
		return fmt.Errorf("film %s: mark decoding: %w", it.id, pathless(err))
	}
	return nil
}

// EndDecode clears the mark: the decoder returned.
func (it *File) EndDecode() { _ = os.Remove(it.mark("decoding")) }

// Crashes is how many starts found the film being decoded.
func (it *File) Crashes() int { return it.crashes }

// countCrash runs at start for a film left in processing: a decoding mark
// means the daemon died while decoding it.
func (it *File) countCrash() error {
	b, err := os.ReadFile(it.mark("crashes"))
	if err == nil {
		it.crashes, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if _, err := os.Stat(it.mark("decoding")); err != nil {
		return nil
	}
	it.crashes++
	if err := writeFileAtomic(it.mark("crashes"), []byte(strconv.Itoa(it.crashes)+"\n")); err != nil {
		return err
	}
	return os.Remove(it.mark("decoding"))
}

// clearMarks forgets the film's marks once it has left processing.
func (it *File) clearMarks() {
	_ = os.Remove(it.mark("decoding"))
	_ = os.Remove(it.mark("crashes"))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// File is a claimed film in the processing area.
type File struct {
	crashes   int
	folder    *Folder
	id        string
	name      string
	path      string
	Recovered bool
	Claimed   time.Time
}

// ID is the daemon's film ID: random, persistent across restarts (it is part
// of the processing file name) and free of patient data.
func (it *File) ID() string { return it.id }

// Name is the file's name as dropped.
func (it *File) Name() string { return it.name }

// Folder is the drop folder it came from.
func (it *File) Folder() string { return it.folder.o.Path }

// Open opens the claimed file for reading. Symbolic links and special files
// are refused: a drop folder is untrusted input and is never followed out.
func (it *File) Open() (io.ReadCloser, int64, error) {
	fd, err := unix.Open(it.path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, 0, &ingest.OpenError{Code: "symlink", Err: errors.New("the dropped file is a symbolic link; links are never followed")}
		}
		return nil, 0, &ingest.OpenError{Code: "unreadable", Err: fmt.Errorf("open claimed file: %w", err)}
	}
	file := os.NewFile(uintptr(fd), it.path)
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, &ingest.OpenError{Code: "unreadable", Err: fmt.Errorf("stat claimed file: %w", pathless(err))}
	}
	if !st.Mode().IsRegular() {
		file.Close()
		return nil, 0, &ingest.OpenError{Code: "not_regular_file", Err: fmt.Errorf("the dropped file is a %s, not a regular file", st.Mode().Type())}
	}
	return file, st.Size(), nil
}

// Done moves the file to done/. Call it only after the film's result is
// durably stored.
func (it *File) Done() (string, error) {
	dst, err := moveNoClobber(it.path, it.folder.o.DoneDir, it.name, it.id)
	if err != nil {
		return "", fmt.Errorf("film %s: move to done: %w", it.id, pathless(err))
	}
	it.clearMarks()
	return dst, nil
}

// Reason is what failed/<name>.reason.json holds.
type Reason struct {
	FilmID string    `json:"film_id"`
	File   string    `json:"file"`
	Code   string    `json:"code"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	Daemon string    `json:"daemon"`
}

// Fail moves the file to failed/ beside a reason file saying why.
func (it *File) Fail(code, reason, daemon string) (string, error) {
	dir := it.folder.o.FailedDir
	final := uniqueName(dir, fitName(it.name, it.id, len(".reason.json.tmp")), it.id)
	b, _ := json.MarshalIndent(Reason{FilmID: it.id, File: it.name, Code: code, Reason: reason, At: time.Now().UTC(), Daemon: daemon}, "", "  ")
	rp := filepath.Join(dir, final+".reason.json")
	if err := writeFileAtomic(rp, append(b, '\n')); err != nil {
		return "", fmt.Errorf("film %s: write reason file: %w", it.id, pathless(err))
	}
	dst := filepath.Join(dir, final)
	if err := renameNoReplace(it.path, dst); err != nil {
		return "", fmt.Errorf("film %s: move to failed: %w", it.id, pathless(err))
	}
	it.clearMarks()
	return dst, nil
}

// Origin is the film's source for its result message.
func (it *File) Origin() publish.Source {
	o := it.folder.o
	src := publish.Source{Kind: o.Kind, Name: o.Path, File: it.name, FilmID: it.id}
	if src.Kind == "" {
		src.Kind = "folder"
	}
	if o.Origin != nil {
		if kind, sender := o.Origin(it.name); kind != "" {
			src.Kind, src.Sender = kind, sender
		}
	}
	return src
}

// PriorityHint: a dropped file carries no priority outside itself.
func (it *File) PriorityHint() string { return "" }

// Ack moves the film to done/: its result is stored.
func (it *File) Ack() error {
	_, err := it.Done()
	return err
}

// Quarantine moves the film to failed/ beside its reason file.
func (it *File) Quarantine(code, reason string) error {
	_, err := it.Fail(code, reason, "triaged "+it.folder.o.Daemon)
	return err
}

// Release leaves the file in processing and queues it again after a delay
// (it is also picked up at the next start).
func (it *File) Release(after time.Duration) { it.folder.requeue(it, after) }

// pathless drops the file names an *fs.PathError or *os.LinkError carries:
// a sender's file name may identify a patient, and these errors reach logs
// and metrics. The operation and the system's reason stay.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validID(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func processingName(id, name string) string {
	n := id + idSep + name
	if len(n) > 255 {
		n = n[:255]
	}
	return n
}

// uniqueName picks name, or name.<id> if name is taken in dir.
func uniqueName(dir, name, id string) string {
	if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) {
		return name
	}
	return fitName(name, id, len(".reason.json.tmp")+len(id)+1) + "." + id
}

func moveNoClobber(src, dir, name, id string) (string, error) {
	dst := filepath.Join(dir, name)
	err := renameNoReplace(src, dst)
	if errors.Is(err, os.ErrExist) {
		dst = filepath.Join(dir, fitName(name, id, len(id)+1)+"."+id)
		err = renameNoReplace(src, dst)
	}
	return dst, err
}

// renameNoReplace renames without ever overwriting an existing file.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// Filesystems without RENAME_NOREPLACE: link+unlink is equally safe.
		if err = os.Link(src, dst); err == nil {
			return os.Remove(src)
		}
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

// writeFileAtomic writes path through a temporary file, which it removes
// if the write fails (a full disk must not leave half-written files
// behind, nor a stray .tmp in failed/ that looks like a film).
func writeFileAtomic(path string, data []byte) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
