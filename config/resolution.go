package config

import "fmt"

// Resolution is decode.resolution: at what size JPEG 2000 and HTJ2K films
// are decoded (docs/performance.md has the measurements behind the
// default).
type Resolution struct {
	// Mode "exact" (default) decodes every film at full size, bit for bit
	// as the reference; "reduced" stops a JPEG 2000 or HTJ2K decode at the
	// deepest wavelet resolution level whose shorter side is still at least
	// Floor pixels, and the resize to the model's input does the rest.
	Mode string `yaml:"mode"`
	// Floor is the shortest side a reduced decode may give (default 448,
	// twice the model's 224-pixel input).
	Floor int `yaml:"floor"`
}

// Resolution modes.
const (
	ResolutionExact   = "exact"
	ResolutionReduced = "reduced"
	// DefaultResolutionFloor is 2 x the model's 224-pixel input, so the
	// antialiased resize still does the last step of the reduction.
	DefaultResolutionFloor = 448
)

// ReducedMinSide is the shortest side a JPEG 2000 decode may stop at, for
// decode.Limits.ReducedMinSide: 0 for exact.
func (r Resolution) ReducedMinSide() int {
	if r.Mode != ResolutionReduced {
		return 0
	}
	if r.Floor == 0 {
		return DefaultResolutionFloor
	}
	return r.Floor
}

// ValidateResolution checks decode.resolution.
func (c *Config) ValidateResolution() Problems {
	var ps Problems
	add := func(path string, v any, msg string) {
		ps = append(ps, Problem{Path: path, Value: fmt.Sprint(v), Msg: msg})
	}
	r := c.Decode.Resolution
	switch r.Mode {
	case "", ResolutionExact, ResolutionReduced:
	default:
		add("decode.resolution.mode", r.Mode, "must be exact or reduced")
	}
	// Below 224 the model's input would be upsampled from a coarser
	// image; above 65535 nothing is ever reduced.
	if r.Floor != 0 && (r.Floor < 224 || r.Floor > 65535) {
		add("decode.resolution.floor", r.Floor, "must be between 224 and 65535 (default 448)")
	}
	return ps
}
