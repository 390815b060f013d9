package bus

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// Security says how to authenticate to NATS and secure the connection.
// Every secret is a file path: the secret itself is read at connect time
// and never logged, printed or put in an error.
type Security struct {
	CAFile   string // server CA; setting any TLS field requires TLS
	CertFile string // client certificate (mutual TLS)
	KeyFile  string
	// At most one of the following.
	CredentialsFile string // a .creds file (user JWT and NKey seed)
	NKeyFile        string // a file holding an NKey seed (SU...)
	User            string
	PasswordFile    string // with User
	TokenFile       string
}

// TLS reports whether TLS is configured.
func (s Security) TLS() bool { return s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" }

// Method names the authentication method for error messages and logs (never
// the secret).
func (s Security) Method() string {
	switch {
	case s.CredentialsFile != "":
		return "credentials file " + s.CredentialsFile
	case s.NKeyFile != "":
		return "NKey seed file " + s.NKeyFile
	case s.User != "":
		return fmt.Sprintf("user %q with password file %s", s.User, s.PasswordFile)
	case s.TokenFile != "":
		return "token file " + s.TokenFile
	}
	return "no credentials"
}

// Options turns the settings into connection options, reading the secret
// files now so that a missing or unreadable file is a clear error at start.
func (s Security) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read nats.tls.ca_file: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats.tls.ca_file %s holds no PEM certificate", s.CAFile)
		}
		opts = append(opts, nats.RootCAs(s.CAFile))
	}
	if s.CertFile != "" || s.KeyFile != "" {
		for _, f := range []string{s.CertFile, s.KeyFile} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("nats.tls client certificate: %w", err)
			}
		}
		opts = append(opts, nats.ClientCert(s.CertFile, s.KeyFile))
	}
	if s.TLS() {
		opts = append(opts, nats.Secure())
	}
	switch {
	case s.CredentialsFile != "":
		if _, err := os.Stat(s.CredentialsFile); err != nil {
			return nil, fmt.Errorf("nats.credentials_file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(s.CredentialsFile))
	case s.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(s.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_file %s: %w", s.NKeyFile, err)
		}
		opts = append(opts, o)
	case s.User != "":
		pw, err := readSecret(s.PasswordFile, "nats.password_file")
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(s.User, pw))
	case s.TokenFile != "":
		tok, err := readSecret(s.TokenFile, "nats.token_file")
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Token(tok))
	}
	return opts, nil
}

// readSecret reads a one-line secret; the trailing newline an editor or
// `echo` adds is not part of it.
func readSecret(path, key string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", key, path)
	}
	return s, nil
}

// explain adds what to check to a connection error the operator can fix.
func explain(err error, s Security) error {
	msg := err.Error()
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked),
		strings.Contains(strings.ToLower(msg), "authorization violation"), strings.Contains(strings.ToLower(msg), "authentication"):
		return fmt.Errorf("the server refused the credentials (%s): %w", s.Method(), err)
	case strings.Contains(msg, "x509") || strings.Contains(msg, "tls:") || errors.Is(err, nats.ErrSecureConnRequired) || errors.Is(err, nats.ErrSecureConnWanted):
		return fmt.Errorf("TLS handshake failed (check nats.tls: ca_file %q, cert_file %q): %w", s.CAFile, s.CertFile, err)
	}
	return err
}
