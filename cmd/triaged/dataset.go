package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/triaged/triaged/dataset"
	"github.com/triaged/triaged/provision"
)

// cmdDatasetExport turns a labeled set of DICOM films into the training set
// the daemon would see (package dataset): the display-ready PNGs, a
// labels.csv training/ reads as it is, and rejects.csv.
func cmdDatasetExport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dataset export", stdout, stderr)
	cfgPath := fs.configFlag("decode limits")
	labels := fs.String("labels", "", "labels CSV with file,label[,source|site][,patient_id|patient][,view] columns (files relative to the CSV)")
	folder := fs.String("folder", "", "labeled folder with covid/ and non/ subfolders (instead of -labels)")
	out := fs.outFlag("", "output directory: images/, labels.csv, rejects.csv")
	workers := fs.Int("workers", 2, "films decoded in parallel")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if *out == "" || (*labels == "") == (*folder == "") || fs.NArg() > 0 {
		return fs.usageError()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	var films []dataset.Film
	if *labels != "" {
		films, err = dataset.ReadCSV(*labels)
	} else {
		films, err = dataset.ReadFolder(*folder)
	}
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := dataset.Export(ctx, films, *out, dataset.Options{Limits: provision.DecodeLimits(cfg), Workers: *workers,
		Progress: newProgress(stderr, len(films)).counter()})
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	enc.Encode(sum)
	if sum.Rejected > 0 {
		codes := make([]string, 0, len(sum.Codes))
		for c := range sum.Codes {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		fmt.Fprintf(stderr, "triaged: %d of %d films could not be exported (%v); see %s\n", sum.Rejected, len(films), codes, sum.Rejects)
	}
	if sum.Exported == 0 {
		return 1
	}
	return 0
}
