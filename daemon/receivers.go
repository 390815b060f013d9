package daemon

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/triaged/triaged/ingest/dicomweb"
	"github.com/triaged/triaged/ingest/dimse"
	"github.com/triaged/triaged/provision"
)

// receiver is a network intake (STOW-RS, C-STORE): it listens from New on,
// so a port clash fails the start, and serves while intake runs. What it
// receives is spooled durably into a drop folder, where the folder intake
// takes it: the receivers never hand films to the pipeline themselves.
type receiver struct {
	name  string
	ln    net.Listener
	serve func(ctx context.Context, ln net.Listener) error
	// output: served until the pipeline has drained (the worklist page),
	// not stopped with intake.
	output bool
}

// openReceivers prepares every enabled network intake.
func (d *Daemon) openReceivers() error {
	if c := d.cfg.Ingest.DICOMweb; c.Enabled {
		o, err := provision.DICOMweb(d.cfg, d.log)
		if err != nil {
			return err
		}
		srv, err := dicomweb.New(o)
		if err != nil {
			return fmt.Errorf("ingest.dicomweb: %w", err)
		}
		ln, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return fmt.Errorf("ingest.dicomweb.listen: %w", err)
		}
		d.stow = srv
		d.receivers = append(d.receivers, receiver{name: "dicomweb", ln: ln, serve: srv.Serve})
		scheme := "http"
		if c.TLS.CertFile != "" {
			scheme = "https"
		}
		d.log.Info().Str("intake", "dicomweb").Str("url", scheme+"://"+ln.Addr().String()+c.BasePath+"/studies").
			Str("folder", o.Spool.Dir()).Bool("anonymous", srv.Anonymous()).Msg("STOW-RS intake listening")
	}
	if c := d.cfg.Ingest.DIMSE; c.Enabled {
		o, err := provision.DIMSE(d.cfg, d.log)
		if err != nil {
			return err
		}
		srv, err := dimse.New(o)
		if err != nil {
			return fmt.Errorf("ingest.dimse: %w", err)
		}
		c = c.WithDefaults()
		ln, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return fmt.Errorf("ingest.dimse.listen: %w", err)
		}
		d.scp = srv
		d.receivers = append(d.receivers, receiver{name: "dimse", ln: ln, serve: srv.Serve})
	}
	return nil
}

// startReceivers serves every network intake until intake ends; a receiver
// that fails stops the daemon like a failed source.
func (d *Daemon) startReceivers(intake context.Context, errs chan<- error, wg *sync.WaitGroup) {
	d.serveReceivers(intake, errs, wg, false)
}

func (d *Daemon) serveReceivers(ctx context.Context, errs chan<- error, wg *sync.WaitGroup, outputs bool) {
	for _, r := range d.receivers {
		if r.output != outputs {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.serve(ctx, r.ln); err != nil && ctx.Err() == nil {
				select {
				case errs <- fmt.Errorf("%s intake: %w", r.name, err):
				default:
				}
			}
		}()
	}
}

// closeReceivers releases listeners that were never served (New failed).
func (d *Daemon) closeReceivers() {
	for _, r := range d.receivers {
		r.ln.Close()
	}
}
