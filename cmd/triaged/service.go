package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/ops"
	"github.com/triaged/triaged/sdnotify"
)

// daemonOptions are extra options for the daemon `run` starts. Only the
// fault tests' TestMain sets any (a wedged worker); production has none.
var daemonOptions []daemon.Option

// serve runs the daemon as a system service: systemd notifications
// (READY once ready, RELOADING/READY around a reload, STOPPING, STATUS), a
// watchdog fed only while the pipeline makes progress, SIGHUP reloads,
// SIGTERM/SIGINT drains, and the HTTP endpoints. Outside systemd the
// notifications are no-ops.
func serve(cfgPath string, cfg *config.Config, stderr io.Writer) int {
	// Signals first: SIGHUP's default action would kill a daemon still
	// loading its models.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(hup)
	defer signal.Stop(term)

	gate := newLevelGate(stderr, cfg.Log.Level)
	log := newLogger(gate, "trace") // the gate filters, so a reload can change the level
	log.Info().Str("version", version).Str("config", describeConfig(cfgPath)).Msg("starting")
	applyMemoryLimit(cfg.Pipeline, log)
	sd := sdnotify.FromEnv()
	notify := func(a ...string) {
		if err := sd.Notify(a...); err != nil {
			log.Warn().Err(err).Msg("cannot notify systemd")
		}
	}
	notify(sdnotify.Status("starting: loading models, connecting to NATS"))

	d, err := newDaemonWaitingForNATS(cfg, log, notify, term)
	if errors.Is(err, errStopped) {
		log.Info().Msg("stopped while waiting for NATS")
		return 0
	}
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		notify(sdnotify.Status("failed to start: " + err.Error()))
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	var web *ops.Server
	if cfg.HTTP.Listen != "" {
		web, err = ops.Listen(cfg.HTTP.Listen, ops.Handler(d, d.Metrics().Handler()), log)
		if err != nil {
			d.Close()
			log.Error().Err(err).Msg("cannot start")
			notify(sdnotify.Status("failed to start: " + err.Error()))
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			return 1
		}
		log.Info().Str("addr", web.Addr()).Msg("HTTP endpoints /metrics, /healthz, /readyz listening")
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx) }()
	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	defer stopWatchdog()
	wdDone := make(chan struct{})
	close(wdDone) // replaced when the watchdog starts

	ready := d.Ready
	reloadPending := false
	stopping := false
	var runErr error
loop:
	for {
		select {
		case <-ready:
			ready = nil
			notify(sdnotify.Ready, sdnotify.Status(runningStatus(d, "")))
			wdDone = startWatchdog(wdCtx, sd, d, log)
			if reloadPending {
				reloadPending = false
				reload(cfgPath, d, gate, notify, log)
			}
		case <-hup:
			if stopping {
				continue
			}
			if ready != nil {
				reloadPending = true
				log.Info().Msg("SIGHUP while starting: the configuration is reloaded once ready")
				continue
			}
			reload(cfgPath, d, gate, notify, log)
		case s := <-term:
			if stopping {
				continue
			}
			stopping = true
			log.Info().Str("signal", s.String()).Msg("stopping")
			notify(sdnotify.Stopping, sdnotify.Status("stopping: intake closed, draining films in flight"))
			stop()
		case runErr = <-runDone:
			break loop
		}
	}
	if !stopping {
		notify(sdnotify.Stopping, sdnotify.Status("stopping: "+errString(runErr)))
	}
	stopWatchdog()
	<-wdDone
	if err := d.Close(); err != nil {
		log.Error().Err(err).Msg("shutdown")
	}
	if web != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		web.Shutdown(sctx)
		cancel()
	}
	if runErr != nil {
		log.Error().Err(runErr).Msg("stopped with an error")
		return 1
	}
	log.Info().Msg("stopped")
	return 0
}

// startWatchdog feeds the systemd watchdog while the pipeline is not wedged.
func startWatchdog(ctx context.Context, sd *sdnotify.Notifier, d *daemon.Daemon, log zerolog.Logger) chan struct{} {
	done := make(chan struct{})
	interval, err := sdnotify.WatchdogInterval()
	if err != nil {
		log.Error().Err(err).Msg("watchdog settings from systemd are unusable; not feeding the watchdog")
	}
	if interval <= 0 || !sd.Enabled() {
		close(done)
		return done
	}
	log.Info().Dur("interval", interval).Msg("feeding the systemd watchdog while the pipeline makes progress")
	go func() {
		defer close(done)
		sdnotify.RunWatchdog(ctx, sd, interval, func() bool { return !d.Wedged() }, func(ok bool) {
			if ok {
				log.Warn().Msg("pipeline moving again; feeding the systemd watchdog")
				sd.Notify(sdnotify.Status(runningStatus(d, "")))
				return
			}
			why := strings.Join(d.Health(), "; ")
			log.Error().Str("reason", why).Msg("pipeline wedged; no longer feeding the systemd watchdog, which will restart the service")
			sd.Notify(sdnotify.Status(why))
		})
	}()
	return done
}

// reload re-reads the configuration file and applies it; an invalid one is
// rejected with every problem logged, and the configuration in force stays.
func reload(cfgPath string, d *daemon.Daemon, gate *levelGate, notify func(...string), log zerolog.Logger) {
	notify(append(sdnotify.ReloadingNow(), sdnotify.Status("reloading the configuration"))...)
	log.Info().Str("config", describeConfig(cfgPath)).Msg("SIGHUP: reloading the configuration")
	t0 := time.Now()
	next, err := loadConfig(cfgPath)
	var res *daemon.ReloadResult
	if err == nil {
		res, err = d.Reload(next)
	}
	if err != nil {
		d.Metrics().Reload(false)
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				log.Error().Str("problem", p.String()).Msg("reload rejected: configuration problem")
			}
			err = fmt.Errorf("%d configuration problem(s)", len(ps))
		}
		log.Error().Err(err).Msg("reload rejected; the configuration in force is unchanged")
		notify(sdnotify.Ready, sdnotify.Status(runningStatus(d, "last reload rejected: "+err.Error())))
		return
	}
	gate.set(next.Log.Level)
	d.Metrics().Reload(true)
	for _, a := range res.Applied {
		log.Info().Str("change", a).Msg("reload applied")
	}
	if len(res.NeedRestart) > 0 {
		log.Warn().Strs("keys", res.NeedRestart).Msg("changed in the configuration file but applied only at the next start (systemctl restart triaged)")
	}
	log.Info().Int("changes", len(res.Applied)).Dur("took", time.Since(t0)).Msg("configuration reloaded")
	note := "configuration reloaded"
	if len(res.NeedRestart) > 0 {
		note += "; restart needed for " + strings.Join(res.NeedRestart, ", ")
	}
	notify(sdnotify.Ready, sdnotify.Status(runningStatus(d, note)))
}

func runningStatus(d *daemon.Daemon, note string) string {
	s := "running"
	if why := d.Readiness(); len(why) > 0 {
		s = "not ready: " + strings.Join(why, "; ")
	}
	if note != "" {
		s += "; " + note
	}
	return s
}

func errString(err error) string {
	if err == nil {
		return "the pipeline ended"
	}
	return err.Error()
}

// levelGate drops log lines below a level that a reload can change; the
// logger itself logs everything down to trace into it.
type levelGate struct {
	w   io.Writer
	lvl atomic.Int32
}

func newLevelGate(w io.Writer, level string) *levelGate {
	g := &levelGate{w: w}
	g.set(level)
	return g
}

func (g *levelGate) set(level string) {
	l, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		l = zerolog.InfoLevel
	}
	g.lvl.Store(int32(l))
}

func (g *levelGate) Write(p []byte) (int, error) { return g.w.Write(p) }

func (g *levelGate) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < zerolog.Level(g.lvl.Load()) {
		return len(p), nil
	}
	return g.w.Write(p)
}

// errStopped: a stop signal came while the daemon waited for NATS.
var errStopped = errors.New("stopped")

// newDaemonWaitingForNATS builds the daemon; while NATS is unreachable it
// waits instead of exiting, so a daemon started (or restarted by systemd)
// during a NATS outage comes up by itself when NATS returns, rather than
// exhausting the unit's start limit. While it waits it claims nothing
// (no intake exists yet), tells systemd READY with a STATUS saying it waits
// (so the start does not time out), and serves /healthz as healthy and
// /readyz as not ready with the reason. Any other failure (models, config,
// credentials refused) ends the start at once.
func newDaemonWaitingForNATS(cfg *config.Config, log zerolog.Logger, notify func(...string), term <-chan os.Signal) (*daemon.Daemon, error) {
	d, err := daemon.New(cfg, log, version, daemonOptions...)
	if err == nil || !errors.Is(err, bus.ErrUnreachable) {
		return d, err
	}
	w := &waitingStatus{}
	w.set(err)
	var web *ops.Server
	if cfg.HTTP.Listen != "" {
		if web, err = ops.Listen(cfg.HTTP.Listen, ops.Handler(w, http.NotFoundHandler()), log); err != nil {
			return nil, err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			web.Shutdown(sctx)
			cancel()
		}()
	}
	notify(sdnotify.Ready, sdnotify.Status("waiting for NATS at "+cfg.NATS.URL+": nothing is claimed until it is reachable"))
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		if attempt == 1 || attempt%10 == 0 {
			log.Warn().Err(w.err()).Int("attempt", attempt).Msg("NATS is unreachable; waiting for it (nothing is claimed meanwhile)")
		}
		select {
		case <-term:
			return nil, errStopped
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 15*time.Second)
		d, err = daemon.New(cfg, log, version, daemonOptions...)
		if err == nil {
			log.Info().Int("attempts", attempt+1).Msg("NATS is reachable; starting")
			return d, nil
		}
		if !errors.Is(err, bus.ErrUnreachable) {
			return nil, err
		}
		w.set(err)
	}
}

// waitingStatus is what /healthz and /readyz say while the daemon waits
// for NATS: alive (a restart would not bring NATS back), not ready.
type waitingStatus struct {
	mu   sync.Mutex
	last error
}

func (w *waitingStatus) set(err error) { w.mu.Lock(); w.last = err; w.mu.Unlock() }
func (w *waitingStatus) err() error    { w.mu.Lock(); defer w.mu.Unlock(); return w.last }
func (w *waitingStatus) Health() []string {
	return nil
}
func (w *waitingStatus) Readiness() []string {
	return []string{"waiting for NATS: " + w.err().Error()}
}
