// Package daemon wires triaged's pipeline together. Read this package to
// follow a film from start to finish:
//
//	source (drop folder) --claim--> admit (header, route, priority)
//	  --> queue (bounded, STAT first) --> worker: decode, preprocess,
//	  score (batched ONNX Runtime), publish (JetStream PubAck)
//	  --> acknowledge the input (file to done/)
//
// A film that cannot be processed gets an error event and goes to
// quarantine (failed/). Nothing is acknowledged before its output is stored,
// so a crash anywhere means the film is processed again on restart, and
// message IDs keep the repeat from producing a second alert.
package daemon

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/pacs"
	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/ingest/dicomweb"
	"github.com/triaged/triaged/ingest/dimse"
	"github.com/triaged/triaged/ingest/folder"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/route"
	"github.com/triaged/triaged/triage"
)

// Daemon is a provisioned pipeline, ready to Run.
type Daemon struct {
	cfg     *config.Config
	log     zerolog.Logger
	version string
	host    string

	engine    atomic.Pointer[triage.Engine]
	pub       *publish.Publisher
	nc        *nats.Conn
	natsState *bus.State
	srv       *server.Server // embedded NATS, if any
	sources   []ingest.Intake
	q         *queue
	limits    decode.Limits
	route     atomic.Pointer[route.Filter] // swapped by a reload
	pseudoKey []byte
	workers   int
	shadow    shadowSet      // candidate model set, shadow.all (shadow.go)
	heat      *heatmapper    // nil when heatmap.enabled is false
	objs      *resultObjects // nil when result_objects.enabled is false

	beforeProcess func(context.Context, ingest.Film) // WithBeforeProcess; nil in production
	// decodeMu: films decode under its read lock; a film that was in flight
	// at a crash takes the write lock and decodes alone (pipeline.go).
	decodeMu sync.RWMutex

	receivers []receiver       // network intakes (receivers.go)
	stow      *dicomweb.Server // STOW-RS, for reloads and metrics; nil when off
	scp       *dimse.Server    // C-STORE, for metrics; nil when off
	served    bool             // Run has taken over the receivers' listeners

	deliveries *deliver.Engine // nil when no destination is configured (outputs.go)
	pacs       *pacs.Delivery  // nil when result_objects has no destination (outputs.go)

	// Ready is closed once the daemon has connected, verified its streams,
	// loaded its models and finished the start-up scan of its sources.
	Ready     chan struct{}
	readyOnce sync.Once

	svc service // readiness, watchdog, metrics, reload (service.go)

	quality quality       // the input-quality gate and the drift watch (quality.go)
	disk    diskState     // full disks (diskfull.go)
	sweep   sweepSettings // orphaned heatmap chunks (sweep.go)
}

// Option changes how New builds a daemon.
type Option func(*Daemon)

// WithBeforeProcess runs f in each worker before it decodes a film. It
// exists for fault tests that must reproduce a wedged disk, a hung
// accelerator or a codec that kills the process in the real binary;
// production code never sets it.
func WithBeforeProcess(f func(ctx context.Context, film ingest.Film)) Option {
	return func(d *Daemon) { d.beforeProcess = f }
}

// New provisions everything the pipeline needs and fails fast, with the
// reason, if anything is missing: models (checked against their sha256),
// NATS (embedded or external) and streams, drop folders.
func New(cfg *config.Config, log zerolog.Logger, version string, opts ...Option) (d *Daemon, err error) {
	d = &Daemon{cfg: cfg, log: log, version: version, Ready: make(chan struct{})}
	for _, o := range opts {
		o(d)
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	d.host, _ = os.Hostname()
	d.limits = provision.DecodeLimits(cfg)
	d.limits.Budget = decode.NewBudget(int64(cfg.Pipeline.DecodeMemory))
	d.route.Store(route.New(cfg.Route))
	logCodecs(log)
	d.workers = cfg.Pipeline.Workers
	if d.workers == 0 {
		d.workers = 2 * runtime.NumCPU()
	}
	if cfg.Log.PseudonymousIDs {
		k, err := os.ReadFile(cfg.Resolve(cfg.Log.PseudonymKeyFile))
		if err != nil {
			return d, fmt.Errorf("read log.pseudonym_key_file: %w", err)
		}
		d.pseudoKey = []byte(strings.TrimSpace(string(k)))
	}

	eng, err := provision.Engine(cfg, log)
	if err != nil {
		return d, err
	}
	d.engine.Store(eng)

	url := cfg.NATS.URL
	var extra []nats.Option
	if url == "" {
		d.srv, err = bus.StartEmbedded(bus.EmbeddedOptions{
			Listen:     cfg.NATS.Embedded.Listen,
			StoreDir:   cfg.Resolve(cfg.NATS.Embedded.StoreDir),
			SyncAlways: cfg.NATS.Embedded.SyncAlways,
			MaxStore:   int64(cfg.NATS.Embedded.MaxStore),
		}, log)
		if err != nil {
			return d, err
		}
		d.disk.guard = bus.NewStoreGuard(d.srv, cfg.Resolve(cfg.NATS.Embedded.StoreDir), int64(cfg.NATS.Embedded.MaxStore), int64(cfg.NATS.Embedded.MinFree))
		if _, err := d.disk.guard.Check(); err != nil {
			return d, err
		}
		url = d.srv.ClientURL()
		extra = append(extra, nats.InProcessServer(d.srv))
		log.Info().Str("url", url).Str("store_dir", cfg.Resolve(cfg.NATS.Embedded.StoreDir)).Msg("embedded NATS server with JetStream started")
	}
	d.nc, d.natsState, err = bus.Connect(bus.ConnectOptions{URL: url, Name: cfg.NATS.Name, Timeout: cfg.NATS.ConnectTimeout, Security: provision.NATSSecurity(cfg), Extra: extra}, log)
	if err != nil {
		return d, err
	}
	d.pub, err = publish.New(d.nc, provision.Publisher(cfg))
	if err != nil {
		return d, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.NATS.ConnectTimeout)
	defer cancel()
	if err := d.pub.EnsureStreams(ctx); err != nil {
		return d, err
	}
	if d.heat, err = newHeatmapper(ctx, cfg, d.pub); err != nil {
		return d, err
	}
	if d.objs, err = newResultObjects(ctx, cfg, d.pub.JS, version); err != nil {
		return d, err
	}

	for _, fc := range cfg.Ingest.Folders {
		o := provision.Folder(cfg, fc)
		o.Log, o.Daemon = log, version
		f, err := folder.Open(o)
		if err != nil {
			return d, err
		}
		d.sources = append(d.sources, f)
	}
	if cfg.Ingest.NATS.Enabled {
		ns, err := d.openNATSIngest(ctx)
		if err != nil {
			return d, err
		}
		d.sources = append(d.sources, ns)
	}
	if err := d.openReceivers(); err != nil {
		return d, err
	}
	d.q = newQueue(cfg.Pipeline.QueueCapacity)
	d.initService()
	if err := d.openShadow(); err != nil {
		return d, err
	}
	if err := d.openOutputs(); err != nil {
		return d, err
	}
	return d, nil
}

// ClientURL is the NATS URL the daemon is connected to.
func (d *Daemon) ClientURL() string { return d.nc.ConnectedUrlRedacted() }

// Run processes films until ctx is cancelled, then stops intake and drains
// the films in flight for up to pipeline.drain_timeout. Films not finished
// by then stay unacknowledged for the next start.
func (d *Daemon) Run(ctx context.Context) error {
	intake, stopIntake := context.WithCancel(context.Background())
	defer stopIntake()
	work, stopWork := context.WithCancel(context.Background())
	defer stopWork()

	outputs, stopOutputs := context.WithCancel(context.Background())
	defer stopOutputs()

	var srcWG, admitWG, workWG, outWG sync.WaitGroup
	admitCh := make(chan ingest.Film)
	errCh := make(chan error, len(d.sources)+len(d.receivers)+1)
	// Sources run under contexts of their own so a reload can add and
	// remove drop folders (sources.go).
	d.startSources(intake, admitCh, errCh, &srcWG)
	d.served = true
	d.startReceivers(intake, errCh, &srcWG)
	d.startOutputs(outputs, errCh, &outWG)
	d.startDiskWatch(outputs, &outWG)
	d.startSweep(outputs, &outWG)
	for range max(2, d.workers/4) {
		admitWG.Add(1)
		go func() {
			defer admitWG.Done()
			for {
				select {
				case it := <-admitCh:
					d.admit(intake, work, it)
				case <-intake.Done():
					return
				}
			}
		}()
	}
	if d.heat != nil {
		d.heat.start(work)
		defer d.heat.stop()
	}
	for range d.workers {
		workWG.Add(1)
		go func() {
			defer workWG.Done()
			for {
				j, err := d.q.pop(intake)
				if err != nil {
					return
				}
				d.process(work, j)
			}
		}()
	}
	// Ready means the start-up scan is done too: every film already waiting
	// is known.
	if d.waitScanned(ctx, errCh) {
		d.readyOnce.Do(func() { close(d.Ready) })
		d.log.Info().Int("workers", d.workers).Int("sources", len(d.sources)).Str("nats", d.ClientURL()).Msg("triaged is ready")
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errCh:
		d.log.Error().Err(runErr).Msg("a source failed; stopping")
	}
	d.log.Info().Dur("drain_timeout", d.cfg.Pipeline.DrainTimeout).Msg("stopping intake, draining films in flight")
	d.beginStop()
	stopIntake()
	// The drain timeout covers admission too: a film being quarantined
	// while NATS is away would otherwise hold the shutdown forever.
	drainTimer := time.AfterFunc(d.cfg.Pipeline.DrainTimeout, func() {
		d.log.Warn().Msg("drain timeout reached; unfinished films stay unacknowledged for the next start")
		stopWork()
	})
	admitWG.Wait()
	srcWG.Wait()
	workWG.Wait()
	if d.heat != nil {
		d.heat.late.Wait() // films waiting for their late occlusion map
	}
	drainTimer.Stop()
	for _, j := range d.q.drain() {
		j.item.Release(0)
	}
	d.log.Info().Msg("drained")
	stopOutputs()
	outWG.Wait()
	return runErr
}

// Close releases everything New acquired.
func (d *Daemon) Close() error {
	var errs []error
	errs = append(errs, d.closeEngines(), d.closeShadow())
	if !d.served {
		d.closeReceivers()
	}
	if d.nc != nil {
		d.nc.Close()
	}
	if d.srv != nil {
		d.srv.Shutdown()
		d.srv.WaitForShutdown()
	}
	return errors.Join(errs...)
}

// pseudonym is a keyed hash of an identifier for log correlation, present
// only when the operator has turned pseudonymous IDs on.
func (d *Daemon) pseudonym(uid string) string {
	if d.pseudoKey == nil || uid == "" {
		return ""
	}
	m := hmac.New(sha256.New, d.pseudoKey)
	m.Write([]byte(uid))
	return hex.EncodeToString(m.Sum(nil))[:16]
}
