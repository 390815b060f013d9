package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// TLS configures the client side of a destination's HTTPS connection.
type TLS struct {
	CAFile     string // PEM bundle to trust instead of the system roots
	CertFile   string // client certificate (mutual TLS)
	KeyFile    string
	ServerName string // expected name, when it differs from the URL's host
}

// NewHTTPClient builds the client a destination posts with: TLS 1.2 or
// later, the given timeout per request, no redirects followed (a receiver
// that redirects an alert is misconfigured; the 3xx is reported).
func NewHTTPClient(t TLS, timeout time.Duration) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// maxSecret bounds a secret file: keys and tokens are short.
const maxSecret = 64 << 10

// ReadSecret reads a key or token from a file (secrets are never written in
// the config), without its trailing newline.
func ReadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", path, err)
	}
	if len(b) > maxSecret {
		return nil, fmt.Errorf("secret file %s is over %d bytes", path, maxSecret)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return b, nil
}

// Post sends body to url with the headers and turns the outcome into nil or
// a SendError (see CheckResponse).
func Post(ctx context.Context, c *http.Client, url string, body []byte, hdr http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return &SendError{Err: fmt.Errorf("build request: %w", err)}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return Retry(ctx.Err())
		}
		// url.Error names the URL, which holds no patient data (a
		// configured endpoint), and the cause.
		return Retry(err)
	}
	return CheckResponse(resp)
}
