// Package route decides from a film's header, before its pixels are
// decoded, whether it is a film the models are meant for (a frontal chest
// radiograph) or one to skip.
package route

import (
	"fmt"
	"slices"
	"strings"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/decode"
)

// Skip codes, in skipped events.
const (
	CodeModality     = "route_modality"
	CodeBodyPart     = "route_body_part"
	CodeViewPosition = "route_view_position"
	CodeSOPClass     = "route_sop_class"
)

// Filter is a compiled routing configuration.
type Filter struct {
	rules       []rule
	skipMissing bool
}

type rule struct {
	code, attr, key string
	allow           []string
	value           func(*decode.Header) string
}

// New compiles the route section of a configuration.
func New(r config.Route) *Filter {
	up := func(vs []string) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = strings.ToUpper(strings.TrimSpace(v))
		}
		return out
	}
	return &Filter{
		skipMissing: r.Missing == "skip",
		rules: []rule{
			{CodeSOPClass, "SOP class", "route.sop_classes", r.SOPClasses, func(h *decode.Header) string { return h.SOPClassUID }},
			{CodeModality, "modality", "route.modalities", up(r.Modalities), func(h *decode.Header) string { return h.Modality }},
			{CodeBodyPart, "body part", "route.body_parts", up(r.BodyParts), func(h *decode.Header) string { return h.BodyPart }},
			{CodeViewPosition, "view position", "route.view_positions", up(r.ViewPositions), func(h *decode.Header) string { return h.ViewPosition }},
		},
	}
}

// Decision is the filter's verdict on one film.
type Decision struct {
	Skip bool
	// Code and Reason say why a film is skipped. The reason names the
	// attribute and its value: modality, body part, view position and SOP
	// class identify no patient.
	Code, Reason string
}

// Decide applies the filter to a header.
func (f *Filter) Decide(h *decode.Header) Decision {
	for _, r := range f.rules {
		if len(r.allow) == 0 {
			continue
		}
		v := strings.TrimSpace(r.value(h))
		if v == "" {
			if f.skipMissing {
				return Decision{Skip: true, Code: r.code, Reason: fmt.Sprintf("no %s, and route.missing is skip", r.attr)}
			}
			continue
		}
		if !slices.Contains(r.allow, v) {
			return Decision{Skip: true, Code: r.code, Reason: fmt.Sprintf("%s %s is not in %s %v", r.attr, decode.EchoCS(v), r.key, r.allow)}
		}
	}
	return Decision{}
}
