package provision

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/ingest/dicomweb"
	"github.com/triaged/triaged/ingest/spool"
)

// SpoolFolder is the drop folder a network intake commits into: the one
// named, or the first of ingest.folders.
func SpoolFolder(cfg *config.Config, named string) string {
	if named == "" && len(cfg.Ingest.Folders) > 0 {
		named = cfg.Ingest.Folders[0].Path
	}
	return cfg.Resolve(named)
}

// DICOMweb builds the STOW-RS intake's options from ingest.dicomweb; it
// opens the spool.
func DICOMweb(cfg *config.Config, log zerolog.Logger) (dicomweb.Options, error) {
	c := cfg.Ingest.DICOMweb
	sp, err := spool.Open(SpoolFolder(cfg, c.Folder), spool.Options{
		MinFreeBytes: uint64(c.MinFreeSpace), MaxFileSize: int64(c.MaxInstanceSize), MaxOpen: c.MaxConcurrentRequests,
	})
	if err != nil {
		return dicomweb.Options{}, fmt.Errorf("ingest.dicomweb: %w", err)
	}
	return dicomweb.Options{
		Spool: sp, BasePath: c.BasePath,
		CertFile: cfg.Resolve(c.TLS.CertFile), KeyFile: cfg.Resolve(c.TLS.KeyFile), ClientCAFile: cfg.Resolve(c.TLS.ClientCAFile),
		TokenFile: cfg.Resolve(c.TokenFile), MaxRequestBytes: int64(c.MaxRequestSize), MaxInstanceBytes: int64(c.MaxInstanceSize),
		MaxConcurrent: c.MaxConcurrentRequests, ReadHeaderTimeout: c.ReadHeaderTimeout, BodyTimeout: c.BodyTimeout, IdleTimeout: c.IdleTimeout,
		Log: log,
	}, nil
}
