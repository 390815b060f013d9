package config

// sectionValidators check the sections that live in their own files (one
// per intake, delivery or page), after the core checks of Validate.
var sectionValidators = []func(*Config) Problems{
	(*Config).ValidateDICOMweb,
	(*Config).ValidateDeliver,
	(*Config).ValidateWorklist,
	(*Config).ValidateQuality,
	func(c *Config) Problems { return c.ResultObjects.Problems() },
	(*Config).ValidateShadow,
	(*Config).ValidateResolution,
	(*Config).ValidateCUDABatching,
}

// RunDefaults is what `triaged run` uses without a config file (`make run`):
// the defaults, with every intake on and listening on loopback only, so a
// newcomer can send films every way the product takes them. A config file
// starts from Default instead, where network intakes are off until the
// file turns them on.
func RunDefaults() *Config {
	c := Default()
	c.Ingest.NATS.Enabled = true
	c.Ingest.DICOMweb.Enabled = true
	c.Ingest.DIMSE = DefaultDIMSE()
	c.Worklist.Listen = "127.0.0.1:8044"
	return c
}
