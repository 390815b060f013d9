package worklist

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Limits on the credentials files: they are read once at start, but a
// mistaken path (a log file, a film) must give a clear error, not a huge
// table.
const (
	maxCredFile   = 1 << 20
	maxCredLines  = 10000
	maxNameLen    = 128
	minTokenLen   = 16
	maxSecretLen  = 1024
	bcryptMinCost = 10
)

// ParseUsers reads a users file: one "name:bcrypt-hash" per line (as
// htpasswd -B writes it), blank lines and lines starting with # ignored.
// Only bcrypt hashes of cost >= 10 are accepted: a plain or fast hash in
// the file would be an offline dictionary attack away from a password.
func ParseUsers(data []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := parseCredLines(data, func(n int, name, secret string) error {
		cost, err := bcrypt.Cost([]byte(secret))
		if err != nil {
			return fmt.Errorf("line %d: user %q: not a bcrypt hash (htpasswd -nBC 12 NAME writes one): %w", n, name, err)
		}
		if cost < bcryptMinCost {
			return fmt.Errorf("line %d: user %q: bcrypt cost %d is below %d", n, name, cost, bcryptMinCost)
		}
		if _, dup := out[name]; dup {
			return fmt.Errorf("line %d: user %q is listed twice", n, name)
		}
		out[name] = []byte(secret)
		return nil
	})
	return out, err
}

// token is a bearer token: only its SHA-256 is kept, which is what the
// constant-time comparison runs on.
type token struct {
	name string
	sum  [sha256.Size]byte
}

// ParseTokens reads a tokens file: one "name:token" per line, tokens of at
// least 16 characters, each token unique.
func ParseTokens(data []byte) ([]token, error) {
	var out []token
	seen := map[[sha256.Size]byte]bool{}
	err := parseCredLines(data, func(n int, name, secret string) error {
		if len(secret) < minTokenLen {
			return fmt.Errorf("line %d: token of %q is shorter than %d characters", n, name, minTokenLen)
		}
		sum := sha256.Sum256([]byte(secret))
		if seen[sum] {
			return fmt.Errorf("line %d: the token of %q is also another line's", n, name)
		}
		seen[sum] = true
		out = append(out, token{name: name, sum: sum})
		return nil
	})
	return out, err
}

func parseCredLines(data []byte, each func(n int, name, secret string) error) error {
	if len(data) > maxCredFile {
		return fmt.Errorf("%d bytes: more than a credentials file holds (limit %d)", len(data), maxCredFile)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxCredFile)
	n, entries := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entries++
		if entries > maxCredLines {
			return fmt.Errorf("more than %d entries", maxCredLines)
		}
		name, secret, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("line %d: want name:secret", n)
		}
		if err := checkName(name); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if secret == "" || len(secret) > maxSecretLen || strings.ContainsFunc(secret, unicode.IsSpace) {
			return fmt.Errorf("line %d: user %q: empty, over-long or blank-containing secret", n, name)
		}
		if err := each(n, name, secret); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	if entries == 0 {
		return fmt.Errorf("no entries")
	}
	return nil
}

// checkName accepts a user name fit for logs and the acknowledgement's
// "by": printable UTF-8 without spaces, at most 128 bytes.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("user name %q: empty, over %d bytes or not UTF-8", name, maxNameLen)
	}
	if strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) {
		return fmt.Errorf("user name %q holds blanks or control characters", name)
	}
	return nil
}

// cleanName makes a name someone else asserted (a proxy header, a
// certificate's common name, a failed login's user) safe to log and bounded.
func cleanName(s string) string {
	if len(s) > maxNameLen {
		s = s[:maxNameLen]
	}
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
