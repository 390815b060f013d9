package dimse

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	ul "github.com/triaged/triaged/dimse"
	"github.com/triaged/triaged/ingest/spool"
)

// OptionsFromConfig builds Options from the ingest.dimse section: it opens
// the spool, loads the TLS certificates and parses the allow-list. resolve
// makes a configured path absolute (config.Config.Resolve).
func OptionsFromConfig(c config.DIMSEConfig, resolve func(string) string, log zerolog.Logger) (Options, error) {
	c = c.WithDefaults()
	sp, err := spool.Open(resolve(c.SpoolDir), spool.Options{
		MinFreeBytes: uint64(c.MinFreeSpace),
		// The file meta group comes on top of the data set.
		MaxFileSize: int64(c.MaxInstanceSize) + 64<<10,
	})
	if err != nil {
		return Options{}, fmt.Errorf("ingest.dimse.spool_dir: %w", err)
	}
	o := Options{
		AETitle: c.AETitle, Spool: sp, MaxAssociations: c.MaxAssociations,
		MaxBytesInFlight: int64(c.MaxBytesInFlight),
		SOPClasses:       append(append([]string(nil), DefaultSOPClasses...), c.ExtraSOPClasses...),
		Limits: ul.Limits{
			MaxPDULength: uint32(c.MaxPDULength), MaxDataSetBytes: int64(c.MaxInstanceSize),
			MaxFragments: c.MaxFragments, ARTIM: c.ARTIM, IdleTimeout: c.IdleTimeout,
		},
		Log: log,
	}
	for i, a := range c.AllowedCallers {
		cl := Caller{AETitle: a.AETitle}
		for _, s := range a.Addresses {
			p, err := config.ParseAddress(s)
			if err != nil {
				return Options{}, fmt.Errorf("ingest.dimse.allowed_callers[%d].addresses: %q: %w", i, s, err)
			}
			cl.Addresses = append(cl.Addresses, p)
		}
		o.AllowedCallers = append(o.AllowedCallers, cl)
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(resolve(c.TLS.CertFile), resolve(c.TLS.KeyFile))
		if err != nil {
			return Options{}, fmt.Errorf("ingest.dimse.tls: load the server certificate: %w", err)
		}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if c.TLS.ClientCAFile != "" {
			pem, err := os.ReadFile(resolve(c.TLS.ClientCAFile))
			if err != nil {
				return Options{}, fmt.Errorf("ingest.dimse.tls.client_ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return Options{}, fmt.Errorf("ingest.dimse.tls.client_ca_file %s: no PEM certificate in it", c.TLS.ClientCAFile)
			}
			o.TLS.ClientCAs, o.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	return o, nil
}
