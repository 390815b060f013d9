package daemon

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/ingest/folder"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/route"
	"github.com/triaged/triaged/triage"
)

// ReloadResult says what a reload changed.
type ReloadResult struct {
	// Applied lists, in words, what is now in force.
	Applied []string
	// NeedRestart lists the config keys that differ from the running
	// configuration but apply only at the next start (NATS connection,
	// worker count, ...): they are not half-applied.
	NeedRestart []string
}

// reloadable are the config keys (and key prefixes ending in '.') a reload
// applies at once. Everything else needs a restart.
var reloadable = []string{
	"route.",
	"log.level", // applied by the caller, which owns the logger
	"triage.",
	"models",
	"onnxruntime.device",
	"onnxruntime.cuda_device_id",
	"onnxruntime.intra_op_threads",
	"ingest.folders",
	"pipeline.stall_timeout",
}

// engineKeys change the models or their sessions: a new engine is loaded
// beside the old one.
var engineKeys = []string{"models", "onnxruntime.", "triage.batch_size", "triage.batch_wait"}

// Reload applies a new, already validated configuration while films keep
// flowing. Everything that can fail (loading a new model set, opening new
// drop folders) is prepared first; if any of it fails the reload is
// rejected and the configuration in force stays entirely as it was.
// Then, at once: new thresholds (a retuned engine over the same sessions)
// or a new model set (swapped in atomically; the old one closes when its
// last film is done), folders added and removed, the stall timeout.
func (d *Daemon) Reload(next *config.Config) (*ReloadResult, error) {
	d.svc.reloadMu.Lock()
	defer d.svc.reloadMu.Unlock()
	if !d.svc.srcs.isRunning() {
		return nil, errors.New("reload: the pipeline is not running (starting or stopping)")
	}
	cur := d.svc.current.Load()
	res := &ReloadResult{}
	for _, p := range diffPaths(d.cfg, next) {
		if !matches(p, reloadable) {
			res.NeedRestart = append(res.NeedRestart, p)
		}
	}
	changed := diffPaths(cur, next)

	// Prepare.
	eng, engWhat, err := d.prepareEngine(cur, next, changed)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	plan, err := d.prepareFolders(next)
	if err != nil {
		if eng != nil && eng.Owner() != d.engine.Load().Owner() {
			eng.Close()
		}
		return nil, fmt.Errorf("reload: %w", err)
	}
	res.NeedRestart = append(res.NeedRestart, plan.restart...)

	// The STOW-RS token file is re-read at every reload, so revoking a
	// sender's token needs no restart. A file that cannot be read keeps
	// the tokens in force and rejects the reload.
	if d.stow != nil && d.cfg.Ingest.DICOMweb.TokenFile != "" {
		if err := d.stow.ReloadTokens(); err != nil {
			if eng != nil && eng.Owner() != d.engine.Load().Owner() {
				eng.Close()
			}
			return nil, fmt.Errorf("reload: ingest.dicomweb.token_file: %w", err)
		}
		res.Applied = append(res.Applied, "ingest.dicomweb tokens re-read")
	}

	// Commit: nothing below fails.
	if eng != nil {
		d.swapEngine(eng)
		res.Applied = append(res.Applied, engWhat)
	}
	res.Applied = append(res.Applied, d.commitFolders(plan)...)
	if next.Pipeline.StallTimeout != cur.Pipeline.StallTimeout {
		d.svc.stall.Store(int64(next.Pipeline.StallTimeout))
		res.Applied = append(res.Applied, "pipeline.stall_timeout "+next.Pipeline.StallTimeout.String())
	}
	if slices.ContainsFunc(changed, func(p string) bool { return strings.HasPrefix(p, "route.") }) {
		d.route.Store(route.New(next.Route))
		res.Applied = append(res.Applied, "routing filter")
	}
	if next.Log.Level != cur.Log.Level {
		res.Applied = append(res.Applied, "log.level "+next.Log.Level)
	}
	d.svc.current.Store(next)
	return res, nil
}

// prepareEngine builds the engine the new configuration needs, or returns
// nil when the one in force will do. A model set is new when the
// configuration changed it or when the manifests on disk no longer match
// the loaded set (models replaced in place).
func (d *Daemon) prepareEngine(cur, next *config.Config, changed []string) (*triage.Engine, string, error) {
	old := d.engine.Load()
	mans := make([]*triage.Manifest, len(next.Models))
	for i, m := range next.Models {
		man, err := triage.LoadManifest(next.Resolve(m.Path))
		if err != nil {
			return nil, "", fmt.Errorf("models[%d]: %w", i, err)
		}
		mans[i] = man
	}
	if slices.ContainsFunc(changed, func(p string) bool { return matches(p, engineKeys) }) || triage.ModelSetVersion(mans) != old.Set {
		// The ONNX Runtime library cannot be swapped in a running process:
		// keep the one loaded (a changed path is reported as needing a
		// restart).
		c := *next
		c.ONNXRuntime.Library = d.cfg.ONNXRuntime.Library
		t0 := time.Now()
		eng, err := provision.Engine(&c, d.log)
		if err != nil {
			return nil, "", err
		}
		return eng, fmt.Sprintf("models: %s -> %s (%d models, loaded in %s; the previous set closes after its last film)",
			old.Set, eng.Set, len(eng.Models), time.Since(t0).Round(time.Millisecond)), nil
	}
	if slices.ContainsFunc(changed, func(p string) bool { return strings.HasPrefix(p, "triage.") }) {
		eng := old.Retuned(provision.EngineOptions(next))
		return eng, fmt.Sprintf("thresholds: urgent %.4f -> %.4f, critical %.4f -> %.4f (%s), escalate_stat %t",
			old.Thresholds.Urgent, eng.Thresholds.Urgent, old.Thresholds.Critical, eng.Thresholds.Critical,
			eng.Thresholds.CalibratedOn, next.Triage.EscalateStat), nil
	}
	return nil, "", nil
}

// folderPlan is the change a reload makes to the drop folders.
type folderPlan struct {
	start   []*folder.Folder
	stop    []*folder.Folder
	restart []string
}

// sameDirs compares the directories of two folder configurations.
func sameDirs(a, b folder.Options) bool {
	a, b = a.WithDefaults(), b.WithDefaults()
	return a.Path == b.Path && a.ProcessingDir == b.ProcessingDir && a.DoneDir == b.DoneDir && a.FailedDir == b.FailedDir
}

func (d *Daemon) prepareFolders(next *config.Config) (*folderPlan, error) {
	ss := &d.svc.srcs
	ss.mu.Lock()
	running := map[string]*folder.Folder{}
	for _, s := range ss.order {
		if fs, ok := s.(*folder.Folder); ok {
			running[fs.Path()] = fs
		}
	}
	parked := map[string]*folder.Folder{}
	for p, fs := range ss.folders {
		if running[p] == nil {
			parked[p] = fs
		}
	}
	ss.mu.Unlock()

	plan := &folderPlan{}
	want := map[string]bool{}
	for i, fc := range next.Ingest.Folders {
		o := provision.Folder(next, fc)
		want[o.Path] = true
		if fs := running[o.Path]; fs != nil {
			if !sameDirs(fs.Options(), o) {
				plan.restart = append(plan.restart, fmt.Sprintf("ingest.folders[%d] (the working directories of a running folder)", i))
			}
			continue
		}
		if fs := parked[o.Path]; fs != nil && sameDirs(fs.Options(), o) {
			plan.start = append(plan.start, fs)
			continue
		}
		o.Log, o.Daemon = d.log, d.version
		f, err := folder.Open(o)
		if err != nil {
			return nil, fmt.Errorf("ingest.folders[%d]: %w", i, err)
		}
		plan.start = append(plan.start, f)
	}
	for p, fs := range running {
		if !want[p] {
			plan.stop = append(plan.stop, fs)
		}
	}
	return plan, nil
}

func (d *Daemon) commitFolders(plan *folderPlan) []string {
	ss := &d.svc.srcs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []string
	for _, fs := range plan.stop {
		d.stopSourceLocked(fs)
		out = append(out, "folder removed: "+fs.Path()+" (films already claimed finish; its processing area is picked up if it is added back or at the next start)")
	}
	for _, fs := range plan.start {
		if ss.intake == nil {
			break // stopping meanwhile: the next start opens it
		}
		ss.folders[fs.Path()] = fs
		d.startSourceLocked(fs)
		out = append(out, "folder added: "+fs.Path())
	}
	return out
}

func (ss *sourceSet) isRunning() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.intake != nil
}

// matches reports whether a config path is one of keys, or under a key
// ending in '.', or an element of a list key.
func matches(path string, keys []string) bool {
	for _, k := range keys {
		if path == k || (strings.HasSuffix(k, ".") && strings.HasPrefix(path, k)) ||
			strings.HasPrefix(path, k+"[") || strings.HasPrefix(path, k+".") {
			return true
		}
	}
	return false
}

// diffPaths lists the YAML paths at which two configurations differ: leaf
// keys, or a whole list when any element differs.
func diffPaths(a, b *config.Config) []string {
	var out []string
	diffValue(reflect.ValueOf(*a), reflect.ValueOf(*b), "", &out)
	return out
}

func diffValue(a, b reflect.Value, path string, out *[]string) {
	if a.Kind() == reflect.Struct {
		t := a.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				name = strings.ToLower(f.Name)
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			diffValue(a.Field(i), b.Field(i), p, out)
		}
		return
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		*out = append(*out, path)
	}
}
