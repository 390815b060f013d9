package daemon

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/alertmanager"
	"github.com/triaged/triaged/deliver/pacs"
	"github.com/triaged/triaged/deliver/setup"
	"github.com/triaged/triaged/worklist"
)

// The outputs read the record (the JetStream streams), never the pipeline:
// the deliveries take alerts to outside systems, the worklist page shows
// them. They run from the start of Run until the pipeline has drained, so
// a film scored during the drain is still delivered, and they stop last.

// openOutputs prepares the deliveries and the worklist page.
func (d *Daemon) openOutputs() error {
	if d.scp != nil || d.stow != nil {
		d.svc.metrics.Registry.MustRegister(receiverCollector{scp: d.scp, stow: d.stow})
	}
	d.qualityMetrics() // registered before the first film, so the series exist at zero
	eng, err := setup.Engine(d.cfg, d.pub.JS, setup.Hooks{Acks: d.pub, Log: d.log, Instance: d.host, Conditions: d.healthConditions})
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	if eng != nil {
		d.deliveries = eng
		d.svc.metrics.Registry.MustRegister(deliver.Collector{Engine: eng})
	}
	if d.pacs, err = setup.PACS(d.cfg, d.pub.JS, setup.Hooks{Log: d.log}); err != nil {
		return fmt.Errorf("result_objects: %w", err)
	}
	if d.pacs != nil {
		d.svc.metrics.Registry.MustRegister(pacs.Collector{Delivery: d.pacs})
	}
	if w := d.cfg.Worklist; w.Listen != "" {
		auth, tlsConf, err := worklist.LoadAuth(d.cfg.WorklistResolved())
		if err != nil {
			return fmt.Errorf("worklist: %w", err)
		}
		srv, err := worklist.New(worklist.Options{JS: d.pub.JS, Publisher: d.pub, Prefix: d.cfg.NATS.SubjectPrefix,
			ResultStream: d.cfg.NATS.ResultStream.Name, AlertStream: d.cfg.NATS.AlertStream.Name,
			Auth: auth, TLS: tlsConf, ViewerURL: w.ViewerURL, MaxFilms: w.MaxFilms, ShowSince: w.ShowSince, Log: d.log})
		if err != nil {
			return fmt.Errorf("worklist: %w", err)
		}
		ln, err := net.Listen("tcp", w.Listen)
		if err != nil {
			return fmt.Errorf("worklist.listen: %w", err)
		}
		scheme := "http"
		if tlsConf != nil {
			scheme = "https"
		}
		d.log.Info().Str("url", scheme+"://"+ln.Addr().String()+"/").Bool("anonymous", w.Anonymous()).Msg("worklist page listening")
		d.receivers = append(d.receivers, receiver{name: "worklist", ln: ln, serve: srv.Serve, output: true})
	}
	return nil
}

// healthConditions are the daemon's own troubles, sent to every
// Alertmanager destination beside the always-firing watchdog, so the people
// paged for films also hear when triage itself has stopped. Summaries carry
// counts and states, never patient data.
func (d *Daemon) healthConditions() []alertmanager.Condition {
	n, age, _ := d.svc.settle.oldest(time.Now())
	return []alertmanager.Condition{
		{Name: "TriagedPipelineWedged", Severity: "critical", Firing: d.Wedged(),
			Summary: "triaged has films in flight and has finished none for pipeline.stall_timeout; the watchdog will restart it"},
		{Name: "TriagedNATSDisconnected", Severity: "critical", Firing: d.natsState == nil || !d.natsState.Connected(),
			Summary: "triaged is disconnected from NATS: results cannot be stored, intake is paused"},
		{Name: "TriagedNoModels", Severity: "critical", Firing: d.engine.Load() == nil,
			Summary: "triaged has no models loaded"},
		{Name: "TriagedFilmsUnsettled", Severity: "warning", Firing: age > unsettledLimit,
			Summary: fmt.Sprintf("%d film(s) scored but not moved out of processing for %s (disk full or a folder missing?)", n, age.Round(time.Second))},
		d.driftCondition(),
	}
}

// startOutputs runs the deliveries and the page under ctx.
func (d *Daemon) startOutputs(ctx context.Context, errs chan<- error, wg *sync.WaitGroup) {
	if d.deliveries != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.deliveries.Run(ctx); err != nil && ctx.Err() == nil {
				select {
				case errs <- fmt.Errorf("deliveries: %w", err):
				default:
				}
			}
		}()
	}
	if d.pacs != nil {
		wg.Go(func() {
			if err := d.pacs.Run(ctx); err != nil && ctx.Err() == nil {
				select {
				case errs <- fmt.Errorf("PACS deliveries: %w", err):
				default:
				}
			}
		})
	}
	d.serveReceivers(ctx, errs, wg, true)
}
