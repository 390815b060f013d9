package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/triaged/triaged/config"
)

// Setup is one daemon configuration the bench measures.
type Setup struct {
	Name   string   `json:"name"`
	Models []string `json:"models"`
	// Heatmaps turns heatmaps on (CAM on every alert; occlusion off).
	Heatmaps bool `json:"heatmaps"`
	// AllAlert sets the thresholds so that every film alerts (urgent, not
	// critical): the worst case for heatmaps, whatever the models say.
	AllAlert bool `json:"all_alert"`
	// Shipped runs the embedded defaults (heatmaps with occlusion for
	// critical alerts) with only the paths, ports and models changed.
	Shipped bool `json:"shipped_defaults"`
	// Extra is merged into the YAML (e.g. {"onnxruntime": {"intra_op_threads": 1}}).
	Extra map[string]any `json:"extra,omitempty"`
	// Ref is the PyTorch reference run this setup's throughput is compared
	// with: 1 the default model's, 2 the ensemble's; 0 none.
	Ref int `json:"reference,omitempty"`
}

// instance is a daemon started for one setup.
type instance struct {
	dir      string
	natsURL  string
	httpAddr string
	drop     string
	proc     Process
}

// Process is a running daemon.
type Process interface {
	PID() int
	Stop() error
}

// Launcher starts a daemon with a config file.
type Launcher interface {
	Start(cfgPath, logPath string) (Process, error)
}

// Subprocess runs the daemon binary (`triaged run -config FILE`): what the
// bench measures is then the real process, alone in its address space.
type Subprocess struct{ Binary string }

type subproc struct {
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

func (s Subprocess) Start(cfgPath, logPath string) (Process, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Binary, "run", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", s.Binary, err)
	}
	p := &subproc{cmd: cmd, done: make(chan error, 1), log: lf}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

func (p *subproc) PID() int { return p.cmd.Process.Pid }

func (p *subproc) Stop() error {
	defer p.log.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(90 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("daemon did not stop within 90s of SIGTERM; killed")
	}
}

// freePort asks the kernel for a free TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeConfig writes the daemon config of a setup into dir.
func writeConfig(dir string, s Setup) (cfgPath, natsURL, httpAddr, drop string, err error) {
	np, err := freePort()
	if err != nil {
		return "", "", "", "", err
	}
	hp, err := freePort()
	if err != nil {
		return "", "", "", "", err
	}
	drop = filepath.Join(dir, "incoming")
	var models []map[string]string
	for _, m := range s.Models {
		abs, err := filepath.Abs(m)
		if err != nil {
			return "", "", "", "", err
		}
		models = append(models, map[string]string{"path": abs})
	}
	httpAddr = fmt.Sprintf("127.0.0.1:%d", hp)
	c := map[string]any{
		"log":    map[string]any{"level": "warn"},
		"nats":   map[string]any{"embedded": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", np), "store_dir": filepath.Join(dir, "nats")}},
		"ingest": map[string]any{"folders": []map[string]string{{"path": drop}}, "nats": map[string]any{"enabled": true, "spool_dir": filepath.Join(dir, "spool")}},
		"models": models,
		"http":   map[string]any{"listen": httpAddr},
	}
	if !s.Shipped {
		hm := map[string]any{"enabled": s.Heatmaps}
		if s.Heatmaps {
			hm["occlusion"] = map[string]any{"budget": map[string]any{"critical": "off", "urgent": "off"}}
		}
		c["heatmap"] = hm
	}
	if s.AllAlert {
		c["triage"] = map[string]any{"urgent_threshold": 1e-9, "critical_threshold": 1}
	}
	for k, v := range s.Extra {
		if sub, ok := v.(map[string]any); ok {
			if cur, ok := c[k].(map[string]any); ok {
				for kk, vv := range sub {
					cur[kk] = vv
				}
				continue
			}
		}
		c[k] = v
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return "", "", "", "", err
	}
	cfgPath = filepath.Join(dir, "triaged.yaml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return "", "", "", "", err
	}
	// Check it the way the daemon will, so a bad setup fails here, clearly.
	if _, err := config.Load(cfgPath); err != nil {
		return "", "", "", "", fmt.Errorf("setup %s: %w", s.Name, err)
	}
	return cfgPath, fmt.Sprintf("nats://127.0.0.1:%d", np), httpAddr, drop, nil
}

// startDaemon starts a daemon for a setup and waits until /readyz says ready.
func startDaemon(ctx context.Context, l Launcher, dir string, s Setup) (*instance, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg, natsURL, httpAddr, drop, err := writeConfig(dir, s)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(drop, 0o755); err != nil {
		return nil, err
	}
	p, err := l.Start(cfg, filepath.Join(dir, "daemon.log"))
	if err != nil {
		return nil, err
	}
	in := &instance{dir: dir, natsURL: natsURL, httpAddr: httpAddr, drop: drop, proc: p}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Stop()
			return nil, fmt.Errorf("setup %s: daemon not ready after 3 minutes (see %s)", s.Name, filepath.Join(dir, "daemon.log"))
		}
		if sp, ok := p.(*subproc); ok {
			select {
			case err := <-sp.done:
				return nil, fmt.Errorf("setup %s: daemon exited before ready: %v (see %s)", s.Name, err, filepath.Join(dir, "daemon.log"))
			default:
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}
