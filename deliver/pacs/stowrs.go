package pacs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/resultobj"
)

// STOWOptions configure a STOW-RS destination.
type STOWOptions struct {
	Name string
	// URL is the DICOMweb service's base (…/dicom-web): the objects are
	// POSTed to URL + "/studies".
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// Client carries the timeout and the TLS (a client certificate);
	// nil: a client with a 30s timeout.
	Client *http.Client
	Log    zerolog.Logger
	// Priorities the destination takes (empty: all).
	Priorities []string
}

// STOW sends result objects with STOW-RS, one request per film.
type STOW struct {
	o   STOWOptions
	log zerolog.Logger
}

// NewSTOW checks the options.
func NewSTOW(o STOWOptions) (*STOW, error) {
	if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return nil, fmt.Errorf("pacs: STOW-RS URL %q is not an http(s) URL", o.URL)
	}
	o.URL = strings.TrimRight(o.URL, "/")
	if strings.ContainsAny(o.Token, "\r\n\x00") {
		return nil, errors.New("pacs: the STOW-RS token holds a line break or NUL")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return &STOW{o: o, log: o.Log.With().Str("destination", o.Name).Logger()}, nil
}

// Name is the destination's name.
func (s *STOW) Name() string { return s.o.Name }

// Priorities the destination takes.
func (s *STOW) Priorities() []string { return s.o.Priorities }

// EndBurst does nothing: HTTP keeps its own connections.
func (s *STOW) EndBurst() {}

// maxResponse bounds the response body read, whatever the server sends.
const maxResponse = 1 << 20

// Send POSTs the film's objects as one multipart/related request and
// checks the response: every object must be in the Referenced SOP
// Sequence and none in the Failed SOP Sequence, whatever the HTTP status
// (a 200 or 202 with a failed or missing instance is not a success).
func (s *STOW) Send(ctx context.Context, objs []resultobj.Object) error {
	if len(objs) == 0 {
		return nil
	}
	var rb [12]byte
	_, _ = rand.Read(rb[:])
	boundary := "triaged-" + hex.EncodeToString(rb[:])
	var body bytes.Buffer
	for _, o := range objs {
		fmt.Fprintf(&body, "--%s\r\nContent-Type: application/dicom\r\n\r\n", boundary)
		body.Write(o.File)
		body.WriteString("\r\n")
	}
	fmt.Fprintf(&body, "--%s--\r\n", boundary)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL+"/studies", &body)
	if err != nil {
		return &deliver.SendError{Err: err}
	}
	req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+boundary)
	req.Header.Set("Accept", "application/dicom+json")
	if s.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.o.Token)
	}
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return deliver.Retry(fmt.Errorf("STOW-RS to %s: %w", s.o.Name, err))
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted, http.StatusConflict:
		// The body says what was stored; a 409 (all failed) lists why.
	default:
		// 5xx, 429, 408: retried; any other status (a 204 included: it
		// says nothing of the instances) refused.
		if err := deliver.CheckResponse(resp); err != nil {
			return err
		}
		return &deliver.SendError{Status: resp.StatusCode, Err: fmt.Errorf("STOW-RS to %s: HTTP %d without the stored instances", s.o.Name, resp.StatusCode)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return deliver.Retry(fmt.Errorf("STOW-RS to %s: read response: %w", s.o.Name, err))
	}
	if len(b) > maxResponse {
		return &deliver.SendError{Status: resp.StatusCode, Err: fmt.Errorf("STOW-RS response larger than %d bytes", maxResponse)}
	}
	res, err := ParseResponse(b)
	if err != nil {
		return &deliver.SendError{Status: resp.StatusCode, Body: excerpt(b), Err: fmt.Errorf("STOW-RS response: %w", err)}
	}
	return s.check(resp.StatusCode, res, objs, b)
}

func (s *STOW) check(status int, res *Response, objs []resultobj.Object, body []byte) error {
	var problems []string
	retryable := false
	allRetryable := true
	for _, o := range objs {
		if f, ok := res.Failed[o.SOPInstanceUID]; ok {
			err := checkStatus(f, "")
			if err == nil { // a "failure" with a success code: count it as a failure anyway
				err = fmt.Errorf("status 0x%04X", f)
			}
			var se *deliver.SendError
			if errors.As(err, &se) && se.Retryable {
				retryable = true
			} else {
				allRetryable = false
			}
			problems = append(problems, fmt.Sprintf("%s failed: %v", kind(o), err))
			continue
		}
		w, ok := res.Stored[o.SOPInstanceUID]
		if !ok {
			allRetryable = false
			problems = append(problems, fmt.Sprintf("%s neither stored nor failed in the response", kind(o)))
			continue
		}
		if w != 0 {
			s.log.Warn().Str("object", kind(o)).Str("warning", fmt.Sprintf("0x%04X", w)).Msg("PACS stored the result object with a warning")
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &deliver.SendError{Status: status, Retryable: retryable && allRetryable, Body: excerpt(body),
		Err: fmt.Errorf("STOW-RS to %s: %s", s.o.Name, strings.Join(problems, "; "))}
}

// Response is what a STOW-RS response says about each instance, by SOP
// Instance UID: stored (with its Warning Reason, 0 if none) or failed
// (with its Failure Reason).
type Response struct {
	Stored map[string]uint16
	Failed map[string]uint16
}

// ParseResponse reads a STOW-RS response body (application/dicom+json,
// PS3.18 10.5.3): the Referenced SOP Sequence (0008,1199) with each item's
// Warning Reason (0008,1196) and the Failed SOP Sequence (0008,1198) with
// each item's Failure Reason (0008,1197).
func ParseResponse(b []byte) (*Response, error) {
	type attr struct {
		VR    string            `json:"vr"`
		Value []json.RawMessage `json:"Value"`
	}
	var top map[string]attr
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("not DICOM JSON: %w", err)
	}
	r := &Response{Stored: map[string]uint16{}, Failed: map[string]uint16{}}
	items := func(tag string, reasonTag string, into map[string]uint16) error {
		a, ok := top[tag]
		if !ok {
			return nil
		}
		if len(a.Value) > 10000 {
			return fmt.Errorf("%s: %d items", tag, len(a.Value))
		}
		for i, raw := range a.Value {
			var it map[string]attr
			if err := json.Unmarshal(raw, &it); err != nil {
				return fmt.Errorf("%s item %d: %w", tag, i, err)
			}
			uid := ""
			if v := it["00081155"].Value; len(v) > 0 {
				if err := json.Unmarshal(v[0], &uid); err != nil {
					return fmt.Errorf("%s item %d: Referenced SOP Instance UID: %w", tag, i, err)
				}
			}
			if uid == "" {
				return fmt.Errorf("%s item %d: no Referenced SOP Instance UID", tag, i)
			}
			var reason uint16
			if v := it[reasonTag].Value; len(v) > 0 {
				var n float64
				if err := json.Unmarshal(v[0], &n); err != nil || n < 0 || n > 0xFFFF {
					return fmt.Errorf("%s item %d: reason %s is not a US value", tag, i, v[0])
				}
				reason = uint16(n)
			}
			into[uid] = reason
		}
		return nil
	}
	if err := items("00081199", "00081196", r.Stored); err != nil {
		return nil, err
	}
	if err := items("00081198", "00081197", r.Failed); err != nil {
		return nil, err
	}
	return r, nil
}

func excerpt(b []byte) string {
	if len(b) > 512 {
		b = b[:512]
	}
	return strings.ToValidUTF8(string(b), "?")
}
