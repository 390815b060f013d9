package worklist

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/publish"
)

//go:embed assets
var assets embed.FS

var (
	staticFS, _ = fs.Sub(assets, "assets/static")
	// The style sheet goes inline, allowed by its hash in the policy: one
	// render-blocking request fewer before the first paint.
	styleSheet = mustRead("assets/static/style.css")
	styleHash  = func() string { h := sha256.Sum256([]byte(styleSheet)); return base64.StdEncoding.EncodeToString(h[:]) }()
	scriptHash = func() string {
		h := sha256.Sum256([]byte(mustRead("assets/static/app.js")))
		return hex.EncodeToString(h[:6])
	}()
	csp   = "default-src 'none'; script-src 'self'; style-src 'sha256-" + styleHash + "'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	pages = template.Must(template.New("").Funcs(template.FuncMap{
		"style":  func() template.CSS { return template.CSS(styleSheet) },
		"script": func() string { return "/static/app.js?v=" + scriptHash },
		"age":    age,
		"clock":  func(t time.Time) string { return t.Local().Format("Jan 2 15:04:05") },
		"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ms":     func(t time.Time) int64 { return t.UnixMilli() },
		"score":  func(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) },
		"millis": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"label":  priorityLabel,
		"na":     notAssessableWords,
	}).ParseFS(assets, "assets/*.html"))
)

func mustRead(name string) string {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// maxOverlay bounds an overlay the page fetches from the object store,
// whatever the alert claims.
const maxOverlay = 32 << 20

type ctxKey int

const userKey ctxKey = 0

func userOf(r *http.Request) string { u, _ := r.Context().Value(userKey).(string); return u }

// Handler is the page's HTTP handler (Serve uses it; tests may too).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleList)
	mux.HandleFunc("GET /rows", s.handleRows)
	mux.HandleFunc("GET /events", s.handleEvents)
	mux.HandleFunc("GET /film/{key}", s.handleFilm)
	mux.HandleFunc("GET /film/{key}/overlay/{n}", s.handleOverlay)
	mux.HandleFunc("POST /film/{key}/ack", s.handleAck)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return s.secure(mux)
}

// secure sets the headers every response carries and authenticates.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(r.URL.Path, "/static/") {
			// Code, not results; its URL changes with its content.
			h.Set("Cache-Control", "private, max-age=86400")
		} else {
			h.Set("Cache-Control", "no-store")
		}
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		user, tried, err := s.auth.user(r)
		if err != nil {
			// A browser's first request carries no credentials: only a
			// refusal of credentials offered is worth a warning.
			lvl := s.log.Warn()
			if errors.Is(err, errNoCredentials) {
				lvl = s.log.Debug()
			}
			lvl.Str("user", tried).Str("addr", r.RemoteAddr).Str("reason", err.Error()).Msg("worklist: login refused")
			h.Set("WWW-Authenticate", s.auth.challenge())
			http.Error(w, "login refused", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, user)))
	})
}

// filter reads the page's filters from the query; bad values fall back to
// the defaults.
func (s *Server) filter(q url.Values) Filter {
	f := Filter{Tab: "films", Since: s.showSince, Limit: s.pageRows}
	if q.Get("tab") == "events" {
		f.Tab = "events"
	}
	switch p := q.Get("priority"); p {
	case "critical", "urgent", "routine", "skipped", "error", publish.PriorityNotAssessable:
		f.Priority = p
	}
	if v, ok := q["since"]; ok {
		f.Since = 0
		if d, err := time.ParseDuration(v[0]); err == nil && d > 0 {
			f.Since = d
		}
	}
	switch a := q.Get("ack"); a {
	case "yes", "no":
		f.Ack = a
	}
	return f
}

type listPage struct {
	User            string
	CSRF            string
	Filter          Filter
	SinceValue      string
	Rows            []rowView
	Total           int
	Ready           bool
	UnackedCritical int
	NotAssessable   int
	Held            int
	CanAck          bool
	Priorities      []string
}

type rowView struct {
	*Row
	CSRF   string
	CanAck bool
	Now    time.Time
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	f := s.filter(r.URL.Query())
	now := time.Now()
	rows, total := s.ix.list(f, now)
	t := s.ix.tally()
	p := listPage{User: userOf(r), CSRF: s.csrfToken(w, r), Filter: f, Total: total, Ready: s.ready.Load(),
		UnackedCritical: t.UnackedCritical, NotAssessable: t.NotAssessable, Held: t.Held, CanAck: s.pub != nil,
		Priorities: []string{"critical", "urgent", publish.PriorityNotAssessable, "routine"}}
	if f.Tab == "events" {
		p.Priorities = []string{"skipped", "error"}
	}
	if f.Since > 0 {
		p.SinceValue = f.Since.String()
	}
	for i := range rows {
		p.Rows = append(p.Rows, rowView{Row: &rows[i], CSRF: p.CSRF, CanAck: p.CanAck, Now: now})
	}
	s.render(w, "list.html", p)
}

// handleRows returns the table body alone: a page that lost its event
// stream fetches it to catch up.
func (s *Server) handleRows(w http.ResponseWriter, r *http.Request) {
	f := s.filter(r.URL.Query())
	now := time.Now()
	rows, total := s.ix.list(f, now)
	t := s.ix.tally()
	csrf := s.csrfToken(w, r)
	var b bytes.Buffer
	for i := range rows {
		if err := pages.ExecuteTemplate(&b, "row", rowView{Row: &rows[i], CSRF: csrf, CanAck: s.pub != nil, Now: now}); err != nil {
			s.log.Error().Err(err).Msg("worklist: render rows")
			http.Error(w, "render failed", http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Triaged-Total", strconv.Itoa(total))
	w.Header().Set("Triaged-Unacked-Critical", strconv.Itoa(t.UnackedCritical))
	w.Header().Set("Triaged-Not-Assessable", strconv.Itoa(t.NotAssessable))
	w.Write(b.Bytes())
}

func (s *Server) renderRow(r *Row, csrf string) (string, error) {
	var b bytes.Buffer
	err := pages.ExecuteTemplate(&b, "row", rowView{Row: r, CSRF: csrf, CanAck: s.pub != nil, Now: time.Now()})
	return b.String(), err
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Error().Err(err).Str("page", name).Msg("worklist: render")
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

type overlayView struct {
	N     int
	Label string
}

type filmPage struct {
	User     string
	CSRF     string
	Row      Row
	Result   *publish.Result
	Event    *publish.Event
	Overlays []overlayView
	Notes    []string
	Pending  []string
	Ack      *publish.Ack
	CanAck   bool
	Viewer   string
	JSON     string
}

func (s *Server) handleFilm(w http.ResponseWriter, r *http.Request) {
	d, ok := s.ix.detail(r.PathValue("key"), time.Now())
	if !ok {
		http.Error(w, "no such film (it may be older than the films this page holds)", http.StatusNotFound)
		return
	}
	p := filmPage{User: userOf(r), CSRF: s.csrfToken(w, r), Row: d.Row, Result: d.Result, Event: d.Event,
		Notes: d.Notes, Ack: d.Ack, CanAck: s.pub != nil && d.AlertID != "" && d.Ack == nil}
	for i, a := range d.Attachments {
		if a.Kind == "overlay" {
			label := a.Method
			if a.Model != "" {
				label += ", " + a.Model
			}
			p.Overlays = append(p.Overlays, overlayView{N: i, Label: label})
		}
	}
	if d.Result != nil {
		p.Pending = d.Result.PendingAttachments
		if s.viewer != "" && d.Result.Film.StudyInstanceUID != "" {
			p.Viewer = strings.ReplaceAll(s.viewer, "{study}", url.QueryEscape(d.Result.Film.StudyInstanceUID))
		}
	}
	p.JSON = s.messageJSON(r.Context(), d)
	s.render(w, "film.html", p)
}

// messageJSON is the stored message as it is in the stream (the result,
// else the alert, else the event), indented.
func (s *Server) messageJSON(ctx context.Context, d *detail) string {
	stream, seq := s.results, d.ResultSeq
	switch {
	case d.Event != nil:
		seq = d.EventSeq
	case seq == 0:
		stream, seq = s.alerts, d.AlertSeq
	}
	var raw []byte
	if seq > 0 {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if st, err := s.js.Stream(ctx, stream); err == nil {
			if m, err := st.GetMsg(ctx, seq); err == nil {
				raw = m.Data
			}
		}
	}
	if raw == nil { // aged out of the stream: what the index holds
		var v any = d.Result
		if d.Event != nil {
			v = d.Event
		}
		raw, _ = publish.Encode(v)
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

func (s *Server) handleOverlay(w http.ResponseWriter, r *http.Request) {
	d, ok := s.ix.detail(r.PathValue("key"), time.Now())
	n, err := strconv.Atoi(r.PathValue("n"))
	if !ok || err != nil || n < 0 || n >= len(d.Attachments) || d.Attachments[n].Kind != "overlay" {
		http.Error(w, "no such overlay", http.StatusNotFound)
		return
	}
	a := d.Attachments[n]
	if a.ContentType != "image/png" && a.ContentType != "image/jpeg" {
		http.Error(w, "overlay is not an image", http.StatusUnsupportedMediaType)
		return
	}
	if a.Size <= 0 || a.Size > maxOverlay {
		http.Error(w, "overlay size out of bounds", http.StatusBadGateway)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	// The stored object's own size first: fetching reads it whole.
	var b []byte
	obs, err := s.js.ObjectStore(ctx, a.Bucket)
	if err == nil {
		var info *jetstream.ObjectInfo
		if info, err = obs.GetInfo(ctx, a.Name); err == nil && int64(info.Size) != a.Size {
			err = fmt.Errorf("object holds %d bytes, the alert says %d", info.Size, a.Size)
		}
	}
	if err == nil {
		b, err = publish.FetchAttachment(ctx, s.js, a)
	}
	if err != nil {
		s.log.Warn().Err(err).Str("film", d.Row.Key).Msg("worklist: overlay not available")
		http.Error(w, "overlay not available", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", a.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	key := r.PathValue("key")
	if err := s.checkCSRF(r); err != nil {
		s.log.Warn().Str("user", userOf(r)).Str("addr", r.RemoteAddr).Str("reason", err.Error()).Msg("worklist: acknowledgement refused")
		http.Error(w, "refused: "+err.Error(), http.StatusForbidden)
		return
	}
	if s.pub == nil {
		http.Error(w, "this page is read-only", http.StatusForbidden)
		return
	}
	d, ok := s.ix.detail(key, time.Now())
	if !ok || d.AlertID == "" {
		http.Error(w, "no alert to acknowledge for this film", http.StatusNotFound)
		return
	}
	user := userOf(r)
	pa, err := s.pub.PublishAck(r.Context(), &publish.Ack{AlertID: d.AlertID, ResultID: d.ResultID, By: user, Via: "worklist"})
	if err != nil {
		s.log.Error().Err(err).Str("user", user).Str("film", key).Msg("worklist: acknowledgement not stored")
		http.Error(w, "the acknowledgement could not be stored; try again", http.StatusServiceUnavailable)
		return
	}
	s.log.Info().Str("user", user).Str("addr", r.RemoteAddr).Str("film", key).Str("priority", d.Row.Priority).
		Bool("duplicate", pa.Duplicate).Uint64("seq", pa.Sequence).Msg("worklist: alert acknowledged")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"acknowledged":true,"duplicate":%t}`, pa.Duplicate)
		return
	}
	http.Redirect(w, r, "/film/"+url.PathEscape(key), http.StatusSeeOther)
}

// The CSRF defence is a double-submitted random token (a cookie the page
// echoes in a form field or header) plus an Origin check: stateless, so
// any daemon of a fleet accepts what another served.
func (s *Server) csrfCookieName(r *http.Request) string {
	if r.TLS != nil {
		return "__Host-triaged-csrf"
	}
	return "triaged-csrf"
}

func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(s.csrfCookieName(r)); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	var b [32]byte
	rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: s.csrfCookieName(r), Value: tok, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return tok
}

func (s *Server) checkCSRF(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-site request (%s)", site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errors.New("origin is not this page")
		}
	}
	c, err := r.Cookie(s.csrfCookieName(r))
	if err != nil {
		return errors.New("no CSRF cookie")
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		tok = r.PostFormValue("csrf")
	}
	if len(tok) != 43 || subtle.ConstantTimeCompare([]byte(tok), []byte(c.Value)) != 1 {
		return errors.New("CSRF token does not match")
	}
	return nil
}

// age says how long ago t was, the way a worklist says it.
func age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case t.IsZero():
		return ""
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
