package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DIMSEConfig is the DICOM C-STORE intake (ingest.dimse): a storage SCP
// that writes every received film durably into a drop folder.
type DIMSEConfig struct {
	Enabled bool `yaml:"enabled"`
	// Listen is host:port; DICOM's registered port is 104, 11112 the
	// customary unprivileged one.
	Listen string `yaml:"listen"`
	// AETitle is our AE title; associations calling another are rejected.
	AETitle string `yaml:"ae_title"`
	// SpoolDir is the drop folder received films are committed into: one
	// of ingest.folders (the daemon scores only what lands in a folder it
	// watches); empty means the first of them.
	SpoolDir string `yaml:"spool_dir"`
	// AllowedCallers: when not empty, only these calling AE titles (each
	// optionally only from some addresses) may associate.
	AllowedCallers []DIMSECaller `yaml:"allowed_callers"`
	// ExtraSOPClasses are storage SOP classes accepted beyond CR, DX (for
	// presentation and for processing) and Secondary Capture.
	ExtraSOPClasses []string `yaml:"extra_sop_classes"`
	TLS             DIMSETLS `yaml:"tls"`
	// MaxAssociations bounds associations at once; more are rejected
	// (transient, local limit exceeded).
	MaxAssociations int `yaml:"max_associations"`
	// MaxPDULength is the largest PDU we receive (advertised).
	MaxPDULength ByteSize `yaml:"max_pdu_length"`
	// MaxInstanceSize bounds one received data set; MaxFragments its PDVs.
	MaxInstanceSize ByteSize `yaml:"max_instance_size"`
	MaxFragments    int      `yaml:"max_fragments"`
	// MaxBytesInFlight bounds bytes received and not yet durable across
	// associations; past it a C-STORE is refused (A700).
	MaxBytesInFlight ByteSize `yaml:"max_bytes_in_flight"`
	// MinFreeSpace: below this much free disk, C-STOREs are refused (A700).
	MinFreeSpace ByteSize      `yaml:"min_free_space"`
	ARTIM        time.Duration `yaml:"artim"`
	IdleTimeout  time.Duration `yaml:"idle_timeout"`
}

// DIMSECaller is one allowed calling AE title; Addresses (IPs or CIDR
// prefixes), when given, restrict where it may connect from.
type DIMSECaller struct {
	AETitle   string   `yaml:"ae_title"`
	Addresses []string `yaml:"addresses"`
}

// DIMSETLS turns on DICOM TLS: the server certificate, and with
// ClientCAFile, verification of the callers' certificates.
type DIMSETLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// DefaultDIMSE is the embedded default: on loopback, AE TRIAGED, port
// 11112, films into the default drop folder.
func DefaultDIMSE() DIMSEConfig {
	return DIMSEConfig{
		Enabled:          true,
		Listen:           "127.0.0.1:11112",
		AETitle:          "TRIAGED",
		MaxAssociations:  32,
		MaxPDULength:     256 << 10,
		MaxInstanceSize:  512 << 20,
		MaxFragments:     1 << 18,
		MaxBytesInFlight: 2 << 30,
		MinFreeSpace:     256 << 20,
		ARTIM:            30 * time.Second,
		IdleTimeout:      60 * time.Second,
	}
}

// WithDefaults fills the fields left zero (a config that sets only
// enabled, listen and ae_title gets the rest from DefaultDIMSE).
func (d DIMSEConfig) WithDefaults() DIMSEConfig {
	def := DefaultDIMSE()
	if d.Listen == "" {
		d.Listen = def.Listen
	}
	if d.AETitle == "" {
		d.AETitle = def.AETitle
	}
	if d.MaxAssociations == 0 {
		d.MaxAssociations = def.MaxAssociations
	}
	if d.MaxPDULength == 0 {
		d.MaxPDULength = def.MaxPDULength
	}
	if d.MaxInstanceSize == 0 {
		d.MaxInstanceSize = def.MaxInstanceSize
	}
	if d.MaxFragments == 0 {
		d.MaxFragments = def.MaxFragments
	}
	if d.MaxBytesInFlight == 0 {
		d.MaxBytesInFlight = def.MaxBytesInFlight
	}
	if d.MinFreeSpace == 0 {
		d.MinFreeSpace = def.MinFreeSpace
	}
	if d.ARTIM == 0 {
		d.ARTIM = def.ARTIM
	}
	if d.IdleTimeout == 0 {
		d.IdleTimeout = def.IdleTimeout
	}
	return d
}

var (
	// AE titles: up to 16 characters of the default repertoire, no
	// backslash or control characters, not all spaces (PS3.5 6.2).
	aeRe = regexp.MustCompile(`^[\x20-\x5b\x5d-\x7e]{1,16}$`)
)

// ValidAETitle reports whether s is a usable AE title.
func ValidAETitle(s string) bool {
	return aeRe.MatchString(s) && strings.TrimSpace(s) != "" && s == strings.TrimSpace(s)
}

// validateDIMSE checks ingest.dimse (only when enabled).
func (c *Config) validateDIMSE(add func(path string, v any, msg string, args ...any)) {
	d := c.Ingest.DIMSE.WithDefaults()
	if !c.Ingest.DIMSE.Enabled {
		return
	}
	p := "ingest.dimse."
	if d.SpoolDir != "" {
		found := false
		for _, f := range c.Ingest.Folders {
			found = found || c.Resolve(f.Path) == c.Resolve(d.SpoolDir)
		}
		if !found {
			add(p+"spool_dir", d.SpoolDir, "must be one of ingest.folders: the daemon scores only what lands in a drop folder it watches (leave it empty for the first)")
		}
	}
	host, port, err := net.SplitHostPort(d.Listen)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		add(p+"listen", d.Listen, "must be host:port (for example 0.0.0.0:11112)")
	} else {
		if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			add(p+"listen", d.Listen, "host must be an IP address, localhost or empty")
		}
		if _, hp, err := net.SplitHostPort(c.HTTP.Listen); err == nil && hp == port {
			add(p+"listen", d.Listen, "uses the port of http.listen (%s)", c.HTTP.Listen)
		}
		if c.NATS.URL == "" {
			if _, np, err := net.SplitHostPort(c.NATS.Embedded.Listen); err == nil && np == port {
				add(p+"listen", d.Listen, "uses the port of nats.embedded.listen (%s)", c.NATS.Embedded.Listen)
			}
		}
	}
	if !ValidAETitle(d.AETitle) {
		add(p+"ae_title", d.AETitle, "must be 1 to 16 characters, no backslash, no leading or trailing spaces")
	}
	for i, a := range d.AllowedCallers {
		ap := fmt.Sprintf("%sallowed_callers[%d]", p, i)
		if !ValidAETitle(a.AETitle) {
			add(ap+".ae_title", a.AETitle, "must be 1 to 16 characters, no backslash, no leading or trailing spaces")
		}
		for j, s := range a.Addresses {
			if _, err := ParseAddress(s); err != nil {
				add(fmt.Sprintf("%s.addresses[%d]", ap, j), s, "must be an IP address or a CIDR prefix")
			}
		}
	}
	for i, u := range d.ExtraSOPClasses {
		if len(u) > 64 || !uidRe.MatchString(u) {
			add(fmt.Sprintf("%sextra_sop_classes[%d]", p, i), u, "must be a UID (digits and dots, at most 64 characters)")
		}
	}
	t := d.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		add(p+"tls", "", "set both cert_file and key_file, or neither")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		add(p+"tls.client_ca_file", t.ClientCAFile, "needs cert_file and key_file (the server certificate)")
	}
	if d.MaxAssociations < 1 || d.MaxAssociations > 4096 {
		add(p+"max_associations", d.MaxAssociations, "must be between 1 and 4096")
	}
	if d.MaxPDULength < 4096 || d.MaxPDULength > 16<<20 {
		add(p+"max_pdu_length", d.MaxPDULength, "must be between 4KiB and 16MiB")
	}
	if d.MaxInstanceSize < 1<<20 {
		add(p+"max_instance_size", d.MaxInstanceSize, "must be at least 1MiB")
	}
	if d.MaxFragments < 16 {
		add(p+"max_fragments", d.MaxFragments, "must be at least 16")
	}
	if d.MaxBytesInFlight < d.MaxInstanceSize {
		add(p+"max_bytes_in_flight", d.MaxBytesInFlight, "must be at least max_instance_size (%d bytes)", d.MaxInstanceSize)
	}
	if d.ARTIM < time.Second {
		add(p+"artim", d.ARTIM, "must be at least 1s")
	}
	if d.IdleTimeout < time.Second {
		add(p+"idle_timeout", d.IdleTimeout, "must be at least 1s")
	}
}

// ParseAddress parses an allowed-caller address: an IP address (a prefix
// of its full length) or a CIDR prefix.
func ParseAddress(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
