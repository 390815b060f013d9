package dicomweb

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
)

// minTokenLen keeps guessable tokens out of a token file.
const minTokenLen = 16

// tokens are the bearer tokens of a token file, kept as SHA-256 digests:
// comparing digests of equal length in constant time hides both the
// tokens and their lengths from timing.
type tokens struct {
	mu     sync.RWMutex
	digest [][sha256.Size]byte
	label  []string
}

// loadTokens reads a token file: one token per line, optionally preceded
// by a label and whitespace ("pacs-east 6f1c..."), which is what logs and
// spool file names show instead of the token; blank lines and lines
// starting with # are ignored.
func loadTokens(path string) ([][sha256.Size]byte, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read token file %s: %w", path, err)
	}
	var ds [][sha256.Size]byte
	var ls []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		label, tok := fmt.Sprintf("token%d", n), f[0]
		switch len(f) {
		case 1:
		case 2:
			label, tok = f[0], f[1]
		default:
			return nil, nil, fmt.Errorf("token file %s line %d: want TOKEN or LABEL TOKEN", path, n)
		}
		if len(tok) < minTokenLen {
			return nil, nil, fmt.Errorf("token file %s line %d: token shorter than %d characters", path, n, minTokenLen)
		}
		ds = append(ds, sha256.Sum256([]byte(tok)))
		ls = append(ls, label)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read token file %s: %w", path, err)
	}
	if len(ds) == 0 {
		return nil, nil, fmt.Errorf("token file %s holds no token", path)
	}
	return ds, ls, nil
}

func (t *tokens) set(ds [][sha256.Size]byte, ls []string) {
	t.mu.Lock()
	t.digest, t.label = ds, ls
	t.mu.Unlock()
}

// match returns the label of the token, comparing against every token
// whatever matches first.
func (t *tokens) match(tok string) (string, bool) {
	d := sha256.Sum256([]byte(tok))
	t.mu.RLock()
	defer t.mu.RUnlock()
	found := -1
	for i := range t.digest {
		if subtle.ConstantTimeCompare(d[:], t.digest[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return t.label[found], true
}

// authenticate returns who is sending: the label of a bearer token, the
// common name of a verified client certificate, or "anonymous" where
// neither is configured (loopback only, checked by Serve).
func (s *Server) authenticate(r *http.Request) (string, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if cn == "" {
			cn = "client-certificate"
		}
		return "cert:" + cn, true
	}
	if s.tokens == nil {
		if s.clientCA {
			return "", false
		}
		return "anonymous", true
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return s.tokens.match(strings.TrimSpace(h[len(prefix):]))
}
