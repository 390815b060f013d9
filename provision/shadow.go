package provision

import (
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/triage"
)

// ShadowEngine loads the candidate model set of the shadow section, with
// its own thresholds (0: from its manifests) and the live set's batching,
// runtime and escalation. Nil when no candidate is configured.
func ShadowEngine(cfg *config.Config, log zerolog.Logger) (*triage.Engine, error) {
	if len(cfg.Shadow.Models) == 0 {
		return nil, nil
	}
	c := *cfg
	c.Models = cfg.Shadow.Models
	c.Triage.UrgentThreshold = cfg.Shadow.UrgentThreshold
	c.Triage.CriticalThreshold = cfg.Shadow.CriticalThreshold
	return Engine(&c, log.With().Bool("shadow", true).Logger())
}
