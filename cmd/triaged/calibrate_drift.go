package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/drift"
	"github.com/triaged/triaged/eval"
)

// inputSamples decodes every scored calibration film again, as the daemon
// does, for the drift profile's input statistics (display mean and spread,
// pixel spacing, manufacturer, model name, transfer syntax, photometric).
// A plain JPEG/PNG image has no header: only its statistics count. Scores
// are filled in per model by the caller. Films that failed scoring are
// left out (nil entries).
func inputSamples(outs []eval.Outcome, workers int) []*drift.Sample {
	samples := make([]*drift.Sample, len(outs))
	lim := decode.DefaultLimits
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := os.ReadFile(outs[i].Item.Path)
				if err != nil {
					continue
				}
				if decode.Sniff(data) == decode.KindImage {
					g, err := decode.ImageFile(data, lim)
					if err == nil {
						samples[i] = &drift.Sample{Stats: drift.Measure(g)}
					}
					continue
				}
				f, err := decode.Decode(bytes.NewReader(data), int64(len(data)), lim)
				if err != nil {
					continue
				}
				h := f.Header
				samples[i] = &drift.Sample{Stats: drift.Measure(f.Image), PixelSpacing: h.PixelSpacing, Manufacturer: h.Manufacturer,
					Model: h.ModelName, TransferSyntax: h.TransferSyntax, Photometric: h.Photometric}
			}
		}()
	}
	for i, o := range outs {
		if o.Err == nil {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	return samples
}

// driftProfile is model c's calibration profile: its own scores beside the
// input statistics.
func driftProfile(on string, outs []eval.Outcome, samples []*drift.Sample, c int) *drift.Profile {
	var ss []drift.Sample
	for i, o := range outs {
		if o.Err != nil || samples[i] == nil || c >= len(o.Models) {
			continue
		}
		s := *samples[i]
		s.Score = o.Models[c]
		ss = append(ss, s)
	}
	return drift.NewProfile(on, ss)
}

// writeDrift sets the drift profile in a manifest, leaving every other
// field as it is and where it is (a reviewer's diff shows the profile only).
func writeDrift(dir string, p *drift.Profile) error {
	path := filepath.Join(dir, "manifest.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	prof, err := json.Marshal(p)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("parse %s: not a JSON object", path)
	}
	var out bytes.Buffer
	out.WriteString("{")
	n := 0
	field := func(k string, v []byte) error {
		if n > 0 {
			out.WriteString(",")
		}
		n++
		kb, _ := json.Marshal(k)
		fmt.Fprintf(&out, "\n %s: ", kb)
		return json.Indent(&out, v, " ", " ")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		if k == "drift" {
			continue
		}
		if err := field(k, v); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
	}
	if err := field("drift", prof); err != nil {
		return err
	}
	out.WriteString("\n}\n")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// describeProfile is one line per signal for the operator.
func describeProfile(p *drift.Profile) string {
	s := fmt.Sprintf("%d films", p.Films)
	for _, name := range []string{drift.SignalScore, drift.SignalMean, drift.SignalSpread, drift.SignalPixelSpacing} {
		if h := p.Numeric[name]; h != nil {
			s += fmt.Sprintf(", %s %.3g..%.3g (%d bins)", name, h.Min, h.Max, len(h.Expected))
		}
	}
	for name, c := range p.Categorical {
		s += fmt.Sprintf(", %s: %d values", name, len(c))
	}
	return s
}
