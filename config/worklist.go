package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Worklist configures the triage worklist page (package worklist, see
// docs/worklist.md). Results carry study identifiers, so the page is never
// open to the network by default: without any credentials configured it is
// anonymous and then only a loopback listen address is accepted.
type Worklist struct {
	// Listen is the page's own address (host:port); empty turns it off.
	Listen string `yaml:"listen"`
	// UsersFile holds "name:bcrypt-hash" lines (HTTP basic auth).
	UsersFile string `yaml:"users_file"`
	// TokensFile holds "name:token" lines (Authorization: Bearer).
	TokensFile string `yaml:"tokens_file"`
	// TLS: the page's certificate and key; with ClientCAFile, a client
	// certificate signed by that CA identifies the user (its common name).
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
	// ProxyHeader names the header a single-sign-on reverse proxy puts the
	// user's name in; it is believed only from TrustedProxies (IP addresses
	// or CIDR prefixes).
	ProxyHeader    string   `yaml:"proxy_header"`
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ViewerURL links a film to the site's viewer; {study} is replaced by
	// the (URL-escaped) Study Instance UID, e.g.
	// https://pacs.example/ohif/viewer?StudyInstanceUIDs={study}
	ViewerURL string `yaml:"viewer_url"`
	// MaxFilms bounds the films (and skipped/error events) held in memory:
	// the newest ones; 0 means 20000.
	MaxFilms int `yaml:"max_films"`
	// ShowSince is the default time filter of the page (0: everything held).
	ShowSince time.Duration `yaml:"show_since"`
}

// Anonymous reports whether no credentials of any kind are configured.
func (w Worklist) Anonymous() bool {
	return w.UsersFile == "" && w.TokensFile == "" && w.ClientCAFile == "" && w.ProxyHeader == ""
}

// WorklistResolved returns the worklist section with its file paths
// resolved against the config file's directory.
func (c *Config) WorklistResolved() Worklist {
	w := c.Worklist
	for _, p := range []*string{&w.UsersFile, &w.TokensFile, &w.CertFile, &w.KeyFile, &w.ClientCAFile} {
		*p = c.Resolve(*p)
	}
	return w
}

// ValidateWorklist checks the worklist section; Validate includes it.
func (c *Config) ValidateWorklist() Problems {
	var ps Problems
	add := func(path string, v any, msg string, args ...any) {
		ps = append(ps, Problem{Path: path, Value: fmt.Sprint(v), Msg: fmt.Sprintf(msg, args...)})
	}
	w := c.Worklist
	if w.Listen == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(w.Listen)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		add("worklist.listen", w.Listen, "must be host:port (for example 127.0.0.1:8044), or empty to turn the page off")
		return ps
	}
	if w.Anonymous() && !IsLoopbackHost(host) {
		add("worklist.listen", w.Listen, "without users_file, tokens_file, client_ca_file or proxy_header the page is anonymous, which is allowed only on a loopback address (127.0.0.1, ::1, localhost)")
	}
	if (w.CertFile == "") != (w.KeyFile == "") {
		add("worklist.cert_file", w.CertFile, "cert_file and key_file go together")
	}
	if w.ClientCAFile != "" && w.CertFile == "" {
		add("worklist.client_ca_file", w.ClientCAFile, "client certificates need TLS: set cert_file and key_file")
	}
	if w.ProxyHeader != "" {
		if len(w.TrustedProxies) == 0 {
			add("worklist.trusted_proxies", "[]", "is required with proxy_header: the header is believed only from these addresses")
		}
		if strings.ContainsAny(w.ProxyHeader, " :\t\r\n") {
			add("worklist.proxy_header", w.ProxyHeader, "must be a header name")
		}
	}
	for i, p := range w.TrustedProxies {
		if _, err := ParseProxy(p); err != nil {
			add(fmt.Sprintf("worklist.trusted_proxies[%d]", i), p, "must be an IP address or CIDR prefix")
		}
	}
	if w.ViewerURL != "" {
		u, err := url.Parse(strings.ReplaceAll(w.ViewerURL, "{study}", "x"))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("worklist.viewer_url", w.ViewerURL, "must be an http(s) URL")
		} else if !strings.Contains(w.ViewerURL, "{study}") {
			add("worklist.viewer_url", w.ViewerURL, "must contain {study} (the Study Instance UID)")
		}
	}
	if w.MaxFilms < 0 || w.MaxFilms > 1_000_000 {
		add("worklist.max_films", w.MaxFilms, "must be between 0 (20000) and 1000000")
	}
	if w.ShowSince < 0 {
		add("worklist.show_since", w.ShowSince, "must not be negative (0 shows every film held)")
	}
	return ps
}

// IsLoopbackHost reports whether host (of a listen address) is loopback.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseProxy parses a trusted proxy: an IP address or a CIDR prefix.
func ParseProxy(s string) (*net.IPNet, error) {
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		return n, err
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%q is not an IP address", s)
	}
	bits := 128
	if ip4 := ip.To4(); ip4 != nil {
		ip, bits = ip4, 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}
