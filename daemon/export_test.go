package daemon

import "github.com/triaged/triaged/deliver/alertmanager"

// HealthConditions exposes the conditions the Alertmanager destinations
// send, for tests outside the package.
func (d *Daemon) HealthConditions() []alertmanager.Condition { return d.healthConditions() }
