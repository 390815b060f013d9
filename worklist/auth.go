package worklist

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/triaged/triaged/config"
)

// Auth says who may see the page. With none of its methods set the page is
// anonymous, and Serve then refuses any listener but a loopback one.
type Auth struct {
	// Users are name -> bcrypt hash (HTTP basic auth).
	Users map[string][]byte
	// Tokens are bearer tokens (ParseTokens).
	Tokens []token
	// ClientCerts: a verified client certificate names the user (its
	// common name). The TLS configuration (TLSConfig) does the verifying.
	ClientCerts bool
	// ProxyHeader carries the user's name from a single-sign-on reverse
	// proxy; believed only from TrustedProxies.
	ProxyHeader    string
	TrustedProxies []*net.IPNet
}

// Anonymous reports whether no method is configured.
func (a *Auth) Anonymous() bool {
	return len(a.Users) == 0 && len(a.Tokens) == 0 && !a.ClientCerts && a.ProxyHeader == ""
}

// LoadAuth reads the credentials files a (resolved) worklist config names
// and builds the TLS configuration when it asks for TLS (nil otherwise).
func LoadAuth(w config.Worklist) (Auth, *tls.Config, error) {
	var a Auth
	if w.UsersFile != "" {
		data, err := readSmall(w.UsersFile)
		if err != nil {
			return a, nil, err
		}
		if a.Users, err = ParseUsers(data); err != nil {
			return a, nil, fmt.Errorf("users file %s: %w", w.UsersFile, err)
		}
	}
	if w.TokensFile != "" {
		data, err := readSmall(w.TokensFile)
		if err != nil {
			return a, nil, err
		}
		if a.Tokens, err = ParseTokens(data); err != nil {
			return a, nil, fmt.Errorf("tokens file %s: %w", w.TokensFile, err)
		}
	}
	if w.ProxyHeader != "" {
		a.ProxyHeader = http.CanonicalHeaderKey(w.ProxyHeader)
		for _, p := range w.TrustedProxies {
			n, err := config.ParseProxy(p)
			if err != nil {
				return a, nil, fmt.Errorf("trusted proxy %q: %w", p, err)
			}
			a.TrustedProxies = append(a.TrustedProxies, n)
		}
	}
	if w.CertFile == "" {
		return a, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(w.CertFile, w.KeyFile)
	if err != nil {
		return a, nil, fmt.Errorf("worklist certificate %s / key %s: %w", w.CertFile, w.KeyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if w.ClientCAFile != "" {
		pem, err := readSmall(w.ClientCAFile)
		if err != nil {
			return a, nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return a, nil, fmt.Errorf("client CA file %s: no PEM certificate in it", w.ClientCAFile)
		}
		tc.ClientCAs = pool
		// If given: a user without a certificate may still log in another way.
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		a.ClientCerts = true
	}
	return a, tc, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if st.Size() > maxCredFile {
		return nil, fmt.Errorf("%s: %d bytes, more than a credentials file holds", path, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// errAuth is a refused login; its text is what the log gets.
var (
	errAuth          = errors.New("credentials refused")
	errNoCredentials = fmt.Errorf("%w: no credentials", errAuth)
)

// authenticator checks requests against Auth. Successful basic-auth checks
// are remembered for a while: bcrypt costs tens of milliseconds by design,
// and a page makes a request for every image and its event stream.
type authenticator struct {
	a     Auth
	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
}

type cached struct {
	user  string
	until time.Time
}

const (
	authCacheTTL = 5 * time.Minute
	authCacheMax = 4096
)

func newAuthenticator(a Auth) *authenticator {
	return &authenticator{a: a, cache: map[[sha256.Size]byte]cached{}}
}

// user returns who the request is from. tried is the user name a refused
// request claimed (for the log), "" when it offered no credentials at all.
func (au *authenticator) user(r *http.Request) (user, tried string, err error) {
	a := &au.a
	if a.Anonymous() {
		if !isLoopback(r.RemoteAddr) {
			return "", "", fmt.Errorf("%w: anonymous access from a non-loopback address", errAuth)
		}
		return "anonymous", "", nil
	}
	if a.ClientCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		if cn := r.TLS.VerifiedChains[0][0].Subject.CommonName; checkName(cn) == nil {
			return cn, "", nil
		}
	}
	if a.ProxyHeader != "" {
		if v := r.Header.Get(a.ProxyHeader); v != "" {
			if !au.fromProxy(r.RemoteAddr) {
				return "", cleanName(v), fmt.Errorf("%w: %s header from an address that is not a trusted proxy", errAuth, a.ProxyHeader)
			}
			if err := checkName(v); err != nil {
				return "", cleanName(v), fmt.Errorf("%w: %s header: %v", errAuth, a.ProxyHeader, err)
			}
			return v, "", nil
		}
	}
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok && len(a.Tokens) > 0 {
		sum := sha256.Sum256([]byte(tok))
		name := ""
		for _, t := range a.Tokens { // every entry, so the time says nothing of which
			if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
				name = t.name
			}
		}
		if name == "" {
			return "", "(token)", fmt.Errorf("%w: unknown bearer token", errAuth)
		}
		return name, "", nil
	}
	if name, pass, ok := r.BasicAuth(); ok && len(a.Users) > 0 {
		hash, known := a.Users[name]
		if !known {
			// Spend the same time as for a known user.
			compareHash(dummyHash(), pass)
			return "", cleanName(name), fmt.Errorf("%w: unknown user or wrong password", errAuth)
		}
		key := sha256.Sum256([]byte(name + "\x00" + pass + "\x00" + string(hash)))
		now := time.Now()
		au.mu.Lock()
		c, hit := au.cache[key]
		au.mu.Unlock()
		if hit && now.Before(c.until) {
			return c.user, "", nil
		}
		if compareHash(hash, pass) != nil {
			return "", cleanName(name), fmt.Errorf("%w: unknown user or wrong password", errAuth)
		}
		au.mu.Lock()
		if len(au.cache) >= authCacheMax {
			clear(au.cache)
		}
		au.cache[key] = cached{user: name, until: now.Add(authCacheTTL)}
		au.mu.Unlock()
		return name, "", nil
	}
	return "", "", errNoCredentials
}

var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("triaged-worklist-dummy"), bcryptMinCost)
	return h
})

// bcryptSlots bounds the password checks running at once: each is
// deliberately expensive, and a flood of wrong passwords must not take
// every core from the daemon's scoring.
var bcryptSlots = make(chan struct{}, 2)

func compareHash(hash []byte, pass string) error {
	bcryptSlots <- struct{}{}
	defer func() { <-bcryptSlots }()
	return bcrypt.CompareHashAndPassword(hash, []byte(pass))
}

func (au *authenticator) fromProxy(remote string) bool {
	ip := remoteIP(remote)
	if ip == nil {
		return false
	}
	for _, n := range au.a.TrustedProxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// challenge is the WWW-Authenticate header of a refusal.
func (au *authenticator) challenge() string {
	if len(au.a.Users) > 0 {
		return `Basic realm="triaged worklist", charset="UTF-8"`
	}
	return `Bearer realm="triaged worklist"`
}

func remoteIP(addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return net.ParseIP(host)
}

func isLoopback(addr string) bool {
	ip := remoteIP(addr)
	return ip != nil && ip.IsLoopback()
}
