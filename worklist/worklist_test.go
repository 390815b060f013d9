package worklist

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var rowRe = regexp.MustCompile(`<tr id="r-([0-9a-f]+)"[^>]*data-priority="([a-z]+)"`)

func rowsOf(page string) (keys, prios []string) {
	for _, m := range rowRe.FindAllStringSubmatch(page, -1) {
		keys, prios = append(keys, m[1]), append(prios, m[2])
	}
	return keys, prios
}

// The page rebuilds its state from the streams (results, alerts, events)
// and orders it by priority, then newest first.
func TestReplayOrderAndTabs(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	kRout := e.publishFilm(film(1, "routine", 0.05, now.Add(-3*time.Minute)))
	kCrit := e.publishFilm(film(2, "critical", 0.97, now.Add(-2*time.Minute)))
	kUrg := e.publishFilm(film(3, "urgent", 0.5, now.Add(-time.Minute)))
	kCrit2 := e.publishFilm(film(4, "critical", 0.95, now))
	kSkip := e.publishEvent("skipped", "f1:skipped", "route_modality")
	kErr := e.publishEvent("error", "f2:error:bad_dicom", "bad_dicom")

	_, base, _ := e.serve(Options{})
	resp, page := get(t, http.DefaultClient, base+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %s", resp.Status)
	}
	keys, prios := rowsOf(page)
	want := []string{kCrit2, kCrit, kUrg, kRout}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("rows %v (%v), want %v", keys, prios, want)
	}
	if !strings.Contains(page, "<title>(2) triaged worklist</title>") {
		t.Errorf("title does not count the 2 unacknowledged critical films:\n%s", page[:400])
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Cache-Control"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(page, "1.2.826.0.1.3680043.10.1234") {
		t.Error("the worklist page shows a UID; only the film view may")
	}

	_, page = get(t, http.DefaultClient, base+"/?tab=events")
	keys, _ = rowsOf(page)
	if len(keys) != 2 || !strings.Contains(strings.Join(keys, ","), kSkip) || !strings.Contains(strings.Join(keys, ","), kErr) {
		t.Errorf("events tab rows %v, want %s and %s", keys, kSkip, kErr)
	}
	_, page = get(t, http.DefaultClient, base+"/?priority=urgent")
	if keys, _ = rowsOf(page); len(keys) != 1 || keys[0] != kUrg {
		t.Errorf("priority filter: rows %v", keys)
	}
	_, page = get(t, http.DefaultClient, base+"/?ack=no")
	if keys, _ = rowsOf(page); len(keys) != 3 {
		t.Errorf("unacknowledged filter: rows %v, want the 3 alerted films", keys)
	}
	_, page = get(t, http.DefaultClient, base+"/?since=90s")
	if keys, _ = rowsOf(page); len(keys) != 2 {
		t.Errorf("time filter (90s): rows %v, want 2", keys)
	}

	// The film view: models, thresholds, timings, the stored JSON.
	resp, page = get(t, http.DefaultClient, base+"/film/"+kCrit)
	if resp.StatusCode != 200 {
		t.Fatalf("film view: %s", resp.Status)
	}
	for _, want := range []string{"squeezenet1_1", "0.927", "51.0 ms", `&#34;schema&#34;: &#34;triaged.result/v1&#34;`, "Acknowledge"} {
		if !strings.Contains(page, want) {
			t.Errorf("film view lacks %q", want)
		}
	}
	resp, page = get(t, http.DefaultClient, base+"/film/"+kErr)
	if resp.StatusCode != 200 || !strings.Contains(page, "bad_dicom") || strings.Contains(page, "Acknowledge") {
		t.Errorf("error event view: %s", resp.Status)
	}
	if resp, _ := get(t, http.DefaultClient, base+"/film/0000"); resp.StatusCode != 404 {
		t.Errorf("unknown film: %s", resp.Status)
	}
}

// A new film reaches an open page as an event; acknowledging it publishes
// the acknowledgement, which comes back and updates the row.
func TestLiveAndAcknowledge(t *testing.T) {
	e := newEnv(t)
	_, base, logs := e.serve(Options{ViewerURL: "https://pacs.example/viewer?StudyInstanceUIDs={study}"})

	req, _ := http.NewRequest("GET", base+"/events", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events content type %q", ct)
	}
	events := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok && name == "row" {
				var m map[string]any
				json.Unmarshal([]byte(v), &m)
				events <- m
			}
		}
		close(events)
	}()

	r := film(7, "critical", 0.98, time.Now().UTC())
	t0 := time.Now()
	key := e.publishFilm(r)
	waitRow := func(what string, ok func(m map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-events:
				if m["key"] == key && ok(m) {
					return m
				}
			case <-deadline:
				t.Fatalf("no row event: %s", what)
			}
		}
	}
	m := waitRow("new critical film", func(m map[string]any) bool { return m["alerted"] == true })
	t.Logf("new film -> row event: %s", time.Since(t0))
	if m["uc"].(float64) != 1 || !strings.Contains(m["html"].(string), "Acknowledge") {
		t.Errorf("row event %v", m)
	}

	// The film view links the viewer with the Study Instance UID.
	_, page := get(t, http.DefaultClient, base+"/film/"+key)
	if !strings.Contains(page, "https://pacs.example/viewer?StudyInstanceUIDs="+url.QueryEscape(r.Film.StudyInstanceUID)) {
		t.Error("no viewer link")
	}

	// Acknowledge: refused without the CSRF token, and from another origin.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, page = get(t, c, base+"/")
	tok := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(page)
	if tok == nil {
		t.Fatal("no CSRF token in the page")
	}
	post := func(form url.Values, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("POST", base+"/film/"+key+"/ack", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(url.Values{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ack without CSRF token: %s", resp.Status)
	}
	if resp := post(url.Values{"csrf": {tok[1]}}, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ack from another origin: %s", resp.Status)
	}
	if resp := post(url.Values{"csrf": {tok[1]}}, map[string]string{"Origin": base}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ack: %s", resp.Status)
	}
	m = waitRow("acknowledged row", func(m map[string]any) bool { return m["acked"] == true })
	if m["uc"].(float64) != 0 || !strings.Contains(m["html"].(string), "✓ anonymous") {
		t.Errorf("acknowledged row event %v", m)
	}
	var acks []publish.Ack
	for _, msg := range testenv.StreamMessages(t, e.url, alertStream) {
		if msg.Subject == prefix+".alert.ack" {
			var a publish.Ack
			json.Unmarshal(msg.Data, &a)
			acks = append(acks, a)
		}
	}
	if len(acks) != 1 || acks[0].By != "anonymous" || acks[0].Via != "worklist" ||
		acks[0].AlertID != publish.AlertID(r.Film.SOPInstanceUID, r.ModelSet, "critical") || acks[0].ResultID != r.MessageID {
		t.Errorf("acknowledgements on the stream: %+v", acks)
	}
	if l := logs.String(); !strings.Contains(l, "alert acknowledged") || strings.Contains(l, r.Film.SOPInstanceUID) || strings.Contains(l, "film-7.dcm") {
		t.Errorf("log must record the acknowledgement without patient data:\n%s", l)
	}
}

// A page opened later, or by another daemon, shows what an earlier one did:
// state lives in the streams.
func TestRestartKeepsAcknowledgements(t *testing.T) {
	e := newEnv(t)
	r := film(9, "urgent", 0.6, time.Now().UTC())
	key := e.publishFilm(r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.pub.PublishAck(ctx, &publish.Ack{AlertID: publish.AlertID(r.Film.SOPInstanceUID, r.ModelSet, "urgent"), By: "dr-lee", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	_, base, _ := e.serve(Options{})
	_, page := get(t, http.DefaultClient, base+"/")
	if !strings.Contains(page, `id="r-`+key) || !strings.Contains(page, "✓ dr-lee") {
		t.Errorf("replayed page lacks the acknowledgement by dr-lee")
	}
}

// Heatmap overlays are served from the object store, checked against the
// alert's sha256; a late update adds one.
func TestOverlay(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping under -short: renders a full-size overlay (about 2 s)")
	}
	e := newEnv(t)
	a := e.overlay("k1.cam.png")
	r := film(11, "critical", 0.99, time.Now().UTC())
	r.Attachments = []publish.Attachment{a}
	r.PendingAttachments = []string{"occlusion"}
	key := e.publishFilm(r)
	bad := e.overlay("k1.occlusion.png")
	bad.Method = "occlusion"
	bad.SHA256 = strings.Repeat("0", 64)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alertID := publish.AlertID(r.Film.SOPInstanceUID, r.ModelSet, "critical")
	if _, err := e.pub.PublishUpdate(ctx, &publish.Update{Schema: publish.UpdateSchema, Kind: "update", MessageID: publish.UpdateID(alertID, "occlusion"),
		AlertID: alertID, Film: r.Film, Priority: "critical", ModelSet: r.ModelSet, Attachments: []publish.Attachment{bad}, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s, base, _ := e.serve(Options{})
	testenv.Eventually(t, 5*time.Second, "the update", func() bool {
		d, _ := s.ix.detail(key, time.Now())
		return d != nil && len(d.Attachments) == 2
	})
	resp, body := get(t, http.DefaultClient, base+"/film/"+key+"/overlay/0")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || int64(len(body)) != a.Size {
		t.Fatalf("overlay: %s %s %d bytes", resp.Status, resp.Header.Get("Content-Type"), len(body))
	}
	if resp, _ := get(t, http.DefaultClient, base+"/film/"+key+"/overlay/1"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("overlay whose sha256 does not match: %s", resp.Status)
	}
	// An object larger than its reference says is not read.
	big := e.overlay("k1.big.png")
	big.Size--
	big.Kind = "overlay"
	if _, err := e.pub.PublishUpdate(ctx, &publish.Update{Schema: publish.UpdateSchema, Kind: "update", MessageID: publish.UpdateID(alertID, "big"),
		AlertID: alertID, Film: r.Film, Priority: "critical", ModelSet: r.ModelSet, Attachments: []publish.Attachment{big}, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the second update", func() bool {
		d, _ := s.ix.detail(key, time.Now())
		return d != nil && len(d.Attachments) == 3
	})
	if resp, _ := get(t, http.DefaultClient, base+"/film/"+key+"/overlay/2"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("overlay larger than its reference: %s", resp.Status)
	}
	for _, n := range []string{"3", "-1", "x", "99999999999999999999"} {
		if resp, _ := get(t, http.DefaultClient, base+"/film/"+key+"/overlay/"+n); resp.StatusCode != 404 {
			t.Errorf("overlay %s: %s", n, resp.Status)
		}
	}
	_, page := get(t, http.DefaultClient, base+"/film/"+key)
	if !strings.Contains(page, `/film/`+key+`/overlay/0"`) || !strings.Contains(page, "occlusion heatmap still being computed") {
		t.Error("film view lacks the overlay or the pending note")
	}
}

// The index holds the newest films only.
func TestBounded(t *testing.T) {
	e := newEnv(t)
	for i := range 12 {
		e.publishFilm(film(i, "urgent", 0.5, time.Now().UTC()))
	}
	s, _, _ := e.serve(Options{MaxFilms: 5})
	if _, held := s.ix.counts(); held != 5 {
		t.Errorf("held %d entries, want 5", held)
	}
	rows, _ := s.ix.list(Filter{Tab: "films"}, time.Now())
	if len(rows) != 5 {
		t.Fatalf("%d rows", len(rows))
	}
	// The newest five: films 7..11.
	want := filmKey(publish.ResultID(film(11, "", 0, time.Time{}).Film.SOPInstanceUID, "ms-741f6a8e2d17"))
	found := false
	for _, r := range rows {
		found = found || r.Key == want
	}
	if !found {
		t.Error("the newest film is not held")
	}
}

// Anonymous access is for loopback only.
func TestAnonymousNeedsLoopback(t *testing.T) {
	e := newEnv(t)
	s, err := New(Options{JS: e.js, Prefix: prefix, ResultStream: resultStream, AlertStream: alertStream, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skipf("cannot listen on 0.0.0.0: %v", err)
	}
	defer ln.Close()
	if err := s.Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "anonymously") {
		t.Errorf("Serve on %s without credentials: %v", ln.Addr(), err)
	}
	// And a request reaching it from elsewhere (a port forward) is refused.
	req, _ := http.NewRequest("GET", "/", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	w := &recorder{h: http.Header{}}
	s.Handler().ServeHTTP(w, req)
	if w.code != http.StatusUnauthorized {
		t.Errorf("anonymous request from 192.0.2.7: %d", w.code)
	}
}

type recorder struct {
	h    http.Header
	code int
	body strings.Builder
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(c int) { r.code = c }

// A page served before the history is replayed says so.
func TestLoadingHistory(t *testing.T) {
	e := newEnv(t)
	s, err := New(Options{JS: e.js, Prefix: prefix, ResultStream: resultStream, AlertStream: alertStream, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	w := &recorder{h: http.Header{}}
	s.Handler().ServeHTTP(w, req)
	if w.code != 200 || !strings.Contains(w.body.String(), "Loading history from the streams") {
		t.Errorf("%d, page does not say it is still loading", w.code)
	}
}

// Serve stops when its context ends, event streams included, and leaves no
// goroutine behind. The first round warms the connection up (its request
// multiplexer lives as long as the connection); the second is counted. The
// embedded server's own goroutines (its side of the ephemeral consumers,
// gone after their inactivity threshold) run in this process too and are
// not counted.
func TestServeStops(t *testing.T) {
	e := newEnv(t)
	e.publishFilm(film(1, "urgent", 0.5, time.Now().UTC()))
	before := 0
	for round := range 2 {
		if round == 1 {
			time.Sleep(200 * time.Millisecond)
			before = clientGoroutines()
		}
		s, err := New(Options{JS: e.js, Publisher: e.pub, Prefix: prefix, ResultStream: resultStream, AlertStream: alertStream, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, ln) }()
		testenv.Eventually(t, 10*time.Second, "replay", s.Ready)
		client := &http.Client{Transport: &http.Transport{}}
		resp, err := client.Get("http://" + ln.Addr().String() + "/events")
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
		io.ReadAll(resp.Body) // ends: the server closed the stream
		resp.Body.Close()
		client.CloseIdleConnections()
	}
	deadline := time.Now().Add(5 * time.Second)
	for clientGoroutines() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before Serve:\n%s", clientGoroutines(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientGoroutines counts the goroutines that are not the embedded NATS
// server's.
func clientGoroutines() int {
	buf := make([]byte, 4<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if !strings.Contains(g, "nats-server/v2/server") {
			n++
		}
	}
	return n
}
