package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/triaged/triaged/triage"
)

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", stdout, stderr)
	verbose := fs.verboseFlag("also load the ONNX Runtime library and the configured models and show their execution providers", "verbose")
	cfgPath := fs.configFlag("models, for -v")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	fmt.Fprintf(stdout, "triaged %s (%s, %s/%s), ONNX Runtime C API %s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, triage.ORTVersion)
	if !*verbose {
		return 0
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	lib, err := triage.InitRuntime(cfg.ONNXRuntime.Library)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "onnxruntime library: %s (version %s)\n", lib, triage.RuntimeVersion())
	log := newLogger(stderr, "warn")
	cuda := len(cfg.Models) > 0
	for _, m := range cfg.Models {
		mod, err := triage.LoadModel(cfg.Resolve(m.Path), triage.Options{Library: cfg.ONNXRuntime.Library, Device: cfg.ONNXRuntime.Device, CUDADeviceID: cfg.ONNXRuntime.CUDADeviceID, Log: log})
		if err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "model %s %s: %s (requested device %s)\n", mod.Manifest.Name, mod.Manifest.Version, mod.Provider, cfg.ONNXRuntime.Device)
		cuda = cuda && mod.Provider == triage.ProviderCUDA
		mod.Close()
	}
	// The batching the engine will use (triage.NewEngine: triage.cuda when
	// every model runs on CUDA).
	if cuda {
		fmt.Fprintf(stdout, "batching: up to %d films, wait %s (triage.cuda: every model on CUDA)\n", cfg.Triage.CUDA.Size(), cfg.Triage.CUDA.Wait())
	} else {
		fmt.Fprintf(stdout, "batching: up to %d films, wait %s (triage.batch_size, triage.batch_wait)\n", cfg.Triage.BatchSize, cfg.Triage.BatchWait)
	}
	return 0
}
