package worklist

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
)

func TestAuthMethods(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping under -short: bcrypt checks take seconds under the race detector")
	}
	e := newEnv(t)
	toks, err := ParseTokens([]byte("# service accounts\nward-screen:0123456789abcdef0123\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, proxy, _ := net.ParseCIDR("10.0.0.0/8")
	lb := &logBuf{}
	s, err := New(Options{JS: e.js, Publisher: e.pub, Prefix: prefix, ResultStream: resultStream, AlertStream: alertStream,
		Auth: Auth{Users: usersFile(t, "alice", "correct horse", "bob", "battery staple"), Tokens: toks,
			ProxyHeader: "X-Remote-User", TrustedProxies: []*net.IPNet{proxy}},
		Log: zerolog.New(lb)})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	try := func(remote string, set func(r *http.Request)) (int, string, http.Header) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		set(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String(), w.Header()
	}
	cases := []struct {
		name   string
		remote string
		set    func(r *http.Request)
		user   string // "" = refused
	}{
		{"basic alice", "127.0.0.1:1", func(r *http.Request) { r.SetBasicAuth("alice", "correct horse") }, "alice"},
		{"basic bob (cached the 2nd time)", "127.0.0.1:1", func(r *http.Request) { r.SetBasicAuth("bob", "battery staple") }, "bob"},
		{"basic bob again", "127.0.0.1:1", func(r *http.Request) { r.SetBasicAuth("bob", "battery staple") }, "bob"},
		{"wrong password", "127.0.0.1:1", func(r *http.Request) { r.SetBasicAuth("alice", "wrong") }, ""},
		{"unknown user", "127.0.0.1:1", func(r *http.Request) { r.SetBasicAuth("mallory", "x") }, ""},
		{"bearer", "192.0.2.1:1", func(r *http.Request) { r.Header.Set("Authorization", "Bearer 0123456789abcdef0123") }, "ward-screen"},
		{"wrong bearer", "192.0.2.1:1", func(r *http.Request) { r.Header.Set("Authorization", "Bearer 0123456789abcdef0124") }, ""},
		{"proxy header from the proxy", "10.1.2.3:1", func(r *http.Request) { r.Header.Set("X-Remote-User", "dr.sso") }, "dr.sso"},
		{"proxy header from elsewhere", "192.0.2.1:1", func(r *http.Request) { r.Header.Set("X-Remote-User", "dr.sso") }, ""},
		{"proxy header with a control character", "10.1.2.3:1", func(r *http.Request) { r.Header.Set("X-Remote-User", "a\x01b") }, ""},
		{"nothing", "127.0.0.1:1", func(*http.Request) {}, ""},
	}
	for _, c := range cases {
		code, body, hdr := try(c.remote, c.set)
		switch {
		case c.user == "" && code != http.StatusUnauthorized:
			t.Errorf("%s: %d, want 401", c.name, code)
		case c.user == "" && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic "):
			t.Errorf("%s: challenge %q", c.name, hdr.Get("WWW-Authenticate"))
		case c.user != "" && (code != 200 || !strings.Contains(body, "Signed in as <strong>"+c.user+"</strong>")):
			t.Errorf("%s: %d, want 200 as %s", c.name, code, c.user)
		}
	}
	l := lb.String()
	for _, want := range []string{`"user":"alice"`, `"user":"mallory"`, `"addr":"192.0.2.1:1"`, "login refused"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %s:\n%s", want, l)
		}
	}
	if strings.Contains(l, "wrong") && strings.Contains(l, `"wrong"`) || strings.Contains(l, "0123456789abcdef012") {
		t.Errorf("a secret reached the log:\n%s", l)
	}
}

// Client certificates signed by the configured CA identify the user; the
// configuration is read from files as the daemon reads it.
func TestClientCertificates(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reading room CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(cn string, usage x509.ExtKeyUsage, ip bool) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	write := func(name string, blocks ...*pem.Block) string {
		var b []byte
		for _, bl := range blocks {
			b = append(b, pem.EncodeToMemory(bl)...)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	srvCert := issue("worklist", x509.ExtKeyUsageServerAuth, true)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(srvCert.PrivateKey)
	w := config.Worklist{
		Listen:       "127.0.0.1:0",
		CertFile:     write("cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: srvCert.Certificate[0]}),
		KeyFile:      write("key.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		ClientCAFile: write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}
	auth, tc, err := LoadAuth(w)
	if err != nil {
		t.Fatal(err)
	}
	_, base, _ := e.serve(Options{Auth: auth, TLS: tc})
	base = strings.Replace(base, "http://", "https://", 1)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
	}
	resp, page := get(t, client(issue("dr-cert", x509.ExtKeyUsageClientAuth, false)), base+"/")
	if resp.StatusCode != 200 || !strings.Contains(page, "Signed in as <strong>dr-cert</strong>") {
		t.Errorf("with a client certificate: %s", resp.Status)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over TLS")
	}
	if resp, _ := get(t, client(), base+"/"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a certificate: %s", resp.Status)
	}
}

func TestLoadAuthErrors(t *testing.T) {
	dir := t.TempDir()
	weak := filepath.Join(dir, "users")
	os.WriteFile(weak, []byte("alice:$2a$04$Gf2qPUm0cGu1v6HZx0aQCuCQv7ksqpG9YhCwbJYo3DH/1RsUoQJ6W\n"), 0o600)
	short := filepath.Join(dir, "tokens")
	os.WriteFile(short, []byte("svc:short\n"), 0o600)
	for _, c := range []struct {
		w    config.Worklist
		want string
	}{
		{config.Worklist{UsersFile: weak}, "cost 4 is below 10"},
		{config.Worklist{UsersFile: filepath.Join(dir, "absent")}, "no such file"},
		{config.Worklist{TokensFile: short}, "shorter than 16"},
		{config.Worklist{CertFile: filepath.Join(dir, "absent"), KeyFile: filepath.Join(dir, "absent")}, "certificate"},
	} {
		if _, _, err := LoadAuth(c.w); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.w, err, c.want)
		}
	}
}

func TestParseCredentials(t *testing.T) {
	for _, bad := range []string{"", "# only a comment\n", "alice\n", ":hash\n", "al ice:x\n", "alice:plain\n", "alice:$2y$10$short\n"} {
		if _, err := ParseUsers([]byte(bad)); err == nil {
			t.Errorf("ParseUsers(%q) accepted", bad)
		}
	}
	h := "$2y$10$Y3Uo9xYF1YkXJvM4rBHrRe0Jr6v2wA2GfE0m3CqgL1mAqWcbW1C8K" // htpasswd -nbBC 10 format
	if _, err := ParseUsers([]byte("alice:" + h + "\nalice:" + h + "\n")); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate user: %v", err)
	}
	if _, err := ParseTokens([]byte("a:0123456789abcdef\nb:0123456789abcdef\n")); err == nil {
		t.Error("a token shared by two names was accepted")
	}
}
