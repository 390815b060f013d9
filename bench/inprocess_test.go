package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/daemon"
)

// InProcess runs the daemon inside the bench's own process (the smoke
// test): memory and CPU figures then include the bench itself.
type InProcess struct{ Version string }

type inproc struct {
	cancel context.CancelFunc
	done   chan error
	srv    *http.Server
}

func (l InProcess) Start(cfgPath, logPath string) (Process, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	log := zerolog.New(lf).Level(zerolog.WarnLevel)
	d, err := daemon.New(cfg, log, l.Version)
	if err != nil {
		lf.Close()
		return nil, err
	}
	p := &inproc{done: make(chan error, 1)}
	if cfg.HTTP.Listen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", d.Metrics().Handler())
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
			if why := d.Readiness(); len(why) > 0 {
				http.Error(w, strings.Join(why, "\n"), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
		p.srv = &http.Server{Addr: cfg.HTTP.Listen, Handler: mux}
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			d.Close()
			lf.Close()
			return nil, err
		}
		go p.srv.Serve(ln)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		err := d.Run(ctx)
		d.Close()
		lf.Close()
		p.done <- err
	}()
	return p, nil
}

func (p *inproc) PID() int { return os.Getpid() }

func (p *inproc) Stop() error {
	p.cancel()
	if p.srv != nil {
		p.srv.Close()
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(90 * time.Second):
		return errors.New("daemon did not stop within 90s")
	}
}
