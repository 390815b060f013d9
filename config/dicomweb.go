package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DICOMweb is the STOW-RS intake (ingest.dicomweb; see docs/dicomweb.md):
// senders POST instances to http(s)://<listen><base_path>/studies and are
// told "stored" only once each is fsynced into the drop folder.
type DICOMweb struct {
	Enabled bool `yaml:"enabled"`
	// Listen is the intake's own address (not http.listen); 8043 beside
	// Orthanc's 8042, as the two often share a host.
	Listen string `yaml:"listen"`
	// BasePath is the DICOMweb service root.
	BasePath string `yaml:"base_path"`
	// Folder is the drop folder instances are committed into; empty means
	// the first of ingest.folders.
	Folder string      `yaml:"folder"`
	TLS    DICOMwebTLS `yaml:"tls"`
	// TokenFile holds the bearer tokens senders present, one a line
	// ("TOKEN" or "LABEL TOKEN"); the label names the sender in logs.
	TokenFile string `yaml:"token_file"`
	// MaxRequestSize and MaxInstanceSize bound a request and one instance
	// (413 beyond them).
	MaxRequestSize  ByteSize `yaml:"max_request_size"`
	MaxInstanceSize ByteSize `yaml:"max_instance_size"`
	// MaxConcurrentRequests bounds requests received at once (503 beyond).
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// MinFreeSpace: instances are refused (out of resources, A700) while
	// the drop folder's filesystem has less free space than this.
	MinFreeSpace ByteSize `yaml:"min_free_space"`
	// ReadHeaderTimeout bounds a request's headers, BodyTimeout the longest
	// pause inside its body, IdleTimeout an idle keep-alive connection.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	BodyTimeout       time.Duration `yaml:"body_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
}

// DICOMwebTLS is the intake's server certificate and, optionally, the CA
// whose client certificates are accepted as credentials.
type DICOMwebTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// DefaultDICOMweb is the section's defaults (off; on loopback when on).
func DefaultDICOMweb() DICOMweb {
	return DICOMweb{
		Listen:                "127.0.0.1:8043",
		BasePath:              "/dicomweb",
		MaxRequestSize:        2 << 30,
		MaxInstanceSize:       512 << 20,
		MaxConcurrentRequests: 16,
		MinFreeSpace:          256 << 20,
		ReadHeaderTimeout:     10 * time.Second,
		BodyTimeout:           60 * time.Second,
		IdleTimeout:           2 * time.Minute,
	}
}

// UnmarshalYAML fills the defaults under the keys a config gives, so the
// section needs only the keys that differ even where Default has left it
// zero.
func (d *DICOMweb) UnmarshalYAML(n *yaml.Node) error {
	if *d == (DICOMweb{}) {
		*d = DefaultDICOMweb()
	}
	type plain DICOMweb
	return n.Decode((*plain)(d))
}

// ValidateDICOMweb checks ingest.dicomweb (when enabled): the address and
// its clashes with the other listeners, the credentials (anonymous access
// only on loopback, tokens only over TLS off loopback), the files named,
// the drop folder, sizes and timeouts.
func (c *Config) ValidateDICOMweb() Problems {
	var ps Problems
	add := func(path string, v any, msg string, args ...any) {
		ps = append(ps, Problem{Path: path, Value: fmt.Sprint(v), Msg: fmt.Sprintf(msg, args...)})
	}
	d := c.Ingest.DICOMweb
	if !d.Enabled {
		return nil
	}
	const p = "ingest.dicomweb."
	host, port, err := net.SplitHostPort(d.Listen)
	n, perr := strconv.Atoi(port)
	loopback := false
	switch {
	case err != nil || perr != nil || n < 1 || n > 65535:
		add(p+"listen", d.Listen, "must be host:port with a port from 1 to 65535 (for example 127.0.0.1:8043)")
	case host != "" && host != "localhost" && net.ParseIP(host) == nil:
		add(p+"listen", d.Listen, "host must be an IP address, localhost, or empty for every interface")
	default:
		ip := net.ParseIP(host)
		loopback = host == "localhost" || ip != nil && ip.IsLoopback()
		for other, addr := range map[string]string{"http.listen": c.HTTP.Listen, "nats.embedded.listen": c.NATS.Embedded.Listen} {
			if other == "nats.embedded.listen" && c.NATS.URL != "" {
				continue
			}
			if clash(d.Listen, addr) {
				add(p+"listen", d.Listen, "uses the same port as %s (%s)", other, addr)
			}
		}
	}
	tls := d.TLS
	if (tls.CertFile == "") != (tls.KeyFile == "") {
		add(p+"tls", "", "set both cert_file and key_file, or neither")
	}
	if tls.ClientCAFile != "" && tls.CertFile == "" {
		add(p+"tls.client_ca_file", tls.ClientCAFile, "needs tls.cert_file and tls.key_file: client certificates are verified only over TLS")
	}
	for key, f := range map[string]string{"tls.cert_file": tls.CertFile, "tls.key_file": tls.KeyFile, "tls.client_ca_file": tls.ClientCAFile, "token_file": d.TokenFile} {
		if f == "" {
			continue
		}
		if st, err := os.Stat(c.Resolve(f)); err != nil {
			add(p+key, f, "cannot be read: %v", err)
		} else if st.IsDir() {
			add(p+key, f, "is a directory, not a file")
		}
	}
	if !loopback && d.TokenFile == "" && tls.ClientCAFile == "" {
		add(p+"listen", d.Listen, "is not a loopback address: set token_file or tls.client_ca_file (anonymous access is allowed only on loopback)")
	}
	if !loopback && d.TokenFile != "" && tls.CertFile == "" {
		add(p+"tls.cert_file", "", "is required off loopback with token_file: bearer tokens must not travel in clear")
	}
	if !strings.HasPrefix(d.BasePath, "/") || strings.ContainsAny(d.BasePath, " ?#%") || len(d.BasePath) > 1 && strings.HasSuffix(d.BasePath, "/") {
		add(p+"base_path", d.BasePath, "must start with / and hold no trailing /, spaces, ?, # or %%")
	}
	if d.Folder != "" {
		found := false
		for _, f := range c.Ingest.Folders {
			found = found || c.Resolve(f.Path) == c.Resolve(d.Folder)
		}
		if !found {
			add(p+"folder", d.Folder, "must be one of ingest.folders: the daemon scores only what lands in a drop folder it watches")
		}
	} else if len(c.Ingest.Folders) == 0 {
		add(p+"folder", "", "needs a drop folder: list one under ingest.folders")
	}
	if d.MaxInstanceSize < 1<<10 {
		add(p+"max_instance_size", d.MaxInstanceSize, "must be at least 1KiB")
	}
	if d.MaxRequestSize < d.MaxInstanceSize {
		add(p+"max_request_size", d.MaxRequestSize, "must be at least max_instance_size (%s)", d.MaxInstanceSize)
	}
	if d.MaxConcurrentRequests < 1 || d.MaxConcurrentRequests > 1024 {
		add(p+"max_concurrent_requests", d.MaxConcurrentRequests, "must be between 1 and 1024")
	}
	if d.MinFreeSpace < 0 {
		add(p+"min_free_space", d.MinFreeSpace, "must not be negative")
	}
	for key, v := range map[string]time.Duration{"read_header_timeout": d.ReadHeaderTimeout, "body_timeout": d.BodyTimeout, "idle_timeout": d.IdleTimeout} {
		if v < time.Second || v > time.Hour {
			add(p+key, v, "must be between 1s and 1h")
		}
	}
	return ps
}

// clash reports two listen addresses on the same port whose hosts overlap
// (equal, or either on every interface).
func clash(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	norm := func(h string) string {
		if h == "localhost" {
			return "127.0.0.1"
		}
		return h
	}
	return wild(ha) || wild(hb) || norm(ha) == norm(hb)
}
