package deliver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SendError is what a Destination returns when a message was not accepted.
// Retryable errors (connection failures, 429, 5xx) are tried again later,
// after RetryAfter when the receiver said so; the others go to the dead
// letter subject with Status and Body.
type SendError struct {
	Status     int           // HTTP status, 0 for a connection error
	Retryable  bool          // try again later
	RetryAfter time.Duration // the receiver's Retry-After, 0 if none
	Body       string        // an excerpt of the response body
	Err        error
}

func (e *SendError) Error() string {
	switch {
	case e.Status == 0 && e.Err != nil:
		return e.Err.Error()
	case e.Err != nil:
		return fmt.Sprintf("HTTP %d: %v", e.Status, e.Err)
	default:
		return fmt.Sprintf("HTTP %d", e.Status)
	}
}

func (e *SendError) Unwrap() error { return e.Err }

// Retry wraps err as retryable (a connection error or timeout).
func Retry(err error) error { return &SendError{Retryable: true, Err: err} }

// classify turns any error a destination returned into a SendError: an
// error that is not one is treated as retryable, because losing an alert
// to an unexpected error is worse than trying it again.
func classify(err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	return &SendError{Retryable: true, Err: err}
}

// bodyExcerpt bounds what is kept of a response body, whatever its size.
const bodyExcerpt = 512

// CheckResponse reads at most a small excerpt of resp's body and returns
// nil for a 2xx, else a SendError: 408, 425, 429 and 5xx retryable (with
// Retry-After), any other status permanent. It always closes the body.
func CheckResponse(resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, bodyExcerpt))
	// Drain a little more so the connection can be reused, but never an
	// unbounded amount a receiver claims to send.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	se := &SendError{Status: resp.StatusCode, Body: excerpt(b)}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusTooEarly, resp.StatusCode >= 500:
		se.Retryable = true
		se.RetryAfter, _ = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return se
}

// excerpt makes a body fragment safe to store: valid UTF-8, no control
// characters.
func excerpt(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' {
			return ' '
		}
		return r
	}, s)
	for len(s) > bodyExcerpt && !utf8.ValidString(s[:bodyExcerpt]) {
		s = s[:len(s)-1]
	}
	if len(s) > bodyExcerpt {
		s = s[:bodyExcerpt]
	}
	return s
}

// MaxRetryAfter caps how long a receiver can make a delivery wait with
// Retry-After: a misbehaving receiver must not park alerts for days.
const MaxRetryAfter = time.Hour

// ParseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date (RFC 9110 10.2.3), relative to now, capped at MaxRetryAfter.
// It returns 0 and false for an empty or unreadable value.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return MaxRetryAfter, true
			}
			return 0, false
		}
		return min(time.Duration(n)*time.Second, MaxRetryAfter), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		return 0, true
	}
	return min(d, MaxRetryAfter), true
}
