package provision

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	ul "github.com/triaged/triaged/dimse"
	scp "github.com/triaged/triaged/ingest/dimse"
	"github.com/triaged/triaged/ingest/spool"
)

// DIMSE builds the storage SCP's options from ingest.dimse: it opens the
// spool (a drop folder), loads the TLS certificates and parses the
// allow-list.
func DIMSE(cfg *config.Config, log zerolog.Logger) (scp.Options, error) {
	c, resolve := cfg.Ingest.DIMSE.WithDefaults(), cfg.Resolve
	sp, err := spool.Open(SpoolFolder(cfg, c.SpoolDir), spool.Options{
		MinFreeBytes: uint64(c.MinFreeSpace),
		// The file meta group comes on top of the data set.
		MaxFileSize: int64(c.MaxInstanceSize) + 64<<10,
	})
	if err != nil {
		return scp.Options{}, fmt.Errorf("ingest.dimse.spool_dir: %w", err)
	}
	o := scp.Options{
		AETitle: c.AETitle, Spool: sp, MaxAssociations: c.MaxAssociations,
		MaxBytesInFlight: int64(c.MaxBytesInFlight),
		SOPClasses:       append(append([]string(nil), scp.DefaultSOPClasses...), c.ExtraSOPClasses...),
		Limits: ul.Limits{
			MaxPDULength: uint32(c.MaxPDULength), MaxDataSetBytes: int64(c.MaxInstanceSize),
			MaxFragments: c.MaxFragments, ARTIM: c.ARTIM, IdleTimeout: c.IdleTimeout,
		},
		Log: log,
	}
	for i, a := range c.AllowedCallers {
		cl := scp.Caller{AETitle: a.AETitle}
		for _, s := range a.Addresses {
			p, err := config.ParseAddress(s)
			if err != nil {
				return scp.Options{}, fmt.Errorf("ingest.dimse.allowed_callers[%d].addresses: %q: %w", i, s, err)
			}
			cl.Addresses = append(cl.Addresses, p)
		}
		o.AllowedCallers = append(o.AllowedCallers, cl)
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(resolve(c.TLS.CertFile), resolve(c.TLS.KeyFile))
		if err != nil {
			return scp.Options{}, fmt.Errorf("ingest.dimse.tls: load the server certificate: %w", err)
		}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if c.TLS.ClientCAFile != "" {
			pem, err := os.ReadFile(resolve(c.TLS.ClientCAFile))
			if err != nil {
				return scp.Options{}, fmt.Errorf("ingest.dimse.tls.client_ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return scp.Options{}, fmt.Errorf("ingest.dimse.tls.client_ca_file %s: no PEM certificate in it", c.TLS.ClientCAFile)
			}
			o.TLS.ClientCAs, o.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	return o, nil
}
