package worklist

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/triaged/triaged/publish"
)

// notAssessable returns a result as the daemon's input-quality gate
// publishes it (daemon/quality.go): no models, score 0, no alert.
func notAssessable(i int, code string, at time.Time) *publish.Result {
	r := film(i, publish.PriorityNotAssessable, 0, at)
	r.Models = []publish.ModelScore{}
	r.PriorityReason = "not assessable: pixel standard deviation 0.0 below 2.0"
	r.NotAssessable = code
	r.Timings = publish.Timings{QueueMS: 1.2, DecodeMS: 4.5, TotalMS: 6}
	return r
}

// publishNotAssessable publishes it as the daemon does: a result, no alert.
func (e *env) publishNotAssessable(r *publish.Result) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.pub.PublishResult(ctx, r, false); err != nil {
		e.t.Fatalf("publish result: %v", err)
	}
	return filmKey(publish.ResultID(r.Film.SOPInstanceUID, r.ModelSet))
}

var rowAnyRe = regexp.MustCompile(`(?s)<tr id="r-([0-9a-f]+)"[^>]*data-priority="([a-z_]+)".*?</tr>`)

// rowsHTML maps each row's key to its HTML, in page order.
func rowsHTML(page string) (keys []string, html map[string]string) {
	html = map[string]string{}
	for _, m := range rowAnyRe.FindAllStringSubmatch(page, -1) {
		keys = append(keys, m[1])
		html[m[1]] = m[0]
	}
	return keys, html
}

func TestNotAssessableWords(t *testing.T) {
	for code, want := range map[string]string{
		"blank": "blank image", "uniform": "nearly uniform image", "too_small": "image too small",
		"outside_calibration": "image unlike the calibration films", "": "image the model could not judge",
		"<script>": "image the model could not judge",
	} {
		if got := notAssessableWords(code); got != want {
			t.Errorf("%q: %q, want %q", code, got, want)
		}
	}
}

// Without a server: not-assessable films rank after the alerts and before
// the routine films, are counted apart, filter on their own, and carry
// their reason in words.
func TestNotAssessableIndex(t *testing.T) {
	ix := newIndex(100)
	now := time.Now().UTC()
	add := func(r *publish.Result, alert bool) string {
		t.Helper()
		k, err := ix.addResult(r, 1, alert)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	kRout := add(film(1, "routine", 0.05, now), false)
	kNA1 := add(notAssessable(2, "blank", now.Add(-2*time.Minute)), false)
	kUrg := add(film(3, "urgent", 0.5, now.Add(-5*time.Minute)), true)
	kNA2 := add(notAssessable(4, "too_small", now.Add(-time.Minute)), false)
	kCrit := add(film(5, "critical", 0.97, now.Add(-10*time.Minute)), true)

	rows, total := ix.list(Filter{Tab: "films"}, now)
	var keys []string
	for _, r := range rows {
		keys = append(keys, r.Key)
	}
	if want := []string{kCrit, kUrg, kNA2, kNA1, kRout}; total != 5 || strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("order %v, want %v", keys, want)
	}
	if r := rows[2]; r.NotAssessable != "image too small" || r.Alerted || r.Rank != 2 || r.Models != "" {
		t.Errorf("not-assessable row %+v", r)
	}
	if r := rows[4]; r.NotAssessable != "" {
		t.Errorf("routine row says not assessable: %q", r.NotAssessable)
	}
	rows, total = ix.list(Filter{Tab: "films", Priority: publish.PriorityNotAssessable}, now)
	if total != 2 || rows[0].Key != kNA2 || rows[1].Key != kNA1 {
		t.Errorf("not-assessable filter: %d rows %+v", total, rows)
	}
	if _, total = ix.list(Filter{Tab: "films", Ack: "no"}, now); total != 2 {
		t.Errorf("unacknowledged filter: %d rows, want the 2 alerts only", total)
	}
	if tl := ix.tally(); tl.UnackedCritical != 1 || tl.NotAssessable != 2 || tl.Held != 5 {
		t.Errorf("tally %+v", tl)
	}
	s := &Server{pageRows: 100}
	if f := s.filter(url.Values{"priority": {"not_assessable"}}); f.Priority != publish.PriorityNotAssessable {
		t.Errorf("filter from the URL: %+v", f)
	}
}

// Published the way the daemon publishes them, not-assessable films show
// as their own group with their reason, no score, no heatmap, counted in
// the title and the header, and reachable through their filter.
func TestNotAssessablePage(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	kRout := e.publishFilm(film(1, "routine", 0.05, now))
	kCrit := e.publishFilm(film(2, "critical", 0.97, now.Add(-3*time.Minute)))
	kBlank := e.publishNotAssessable(notAssessable(3, "blank", now.Add(-2*time.Minute)))
	kCal := e.publishNotAssessable(notAssessable(4, "outside_calibration", now.Add(-time.Minute)))

	_, base, _ := e.serve(Options{})
	_, page := get(t, http.DefaultClient, base+"/")
	keys, rows := rowsHTML(page)
	if want := []string{kCrit, kCal, kBlank, kRout}; strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("rows %v, want %v", keys, want)
	}
	for k, reason := range map[string]string{kBlank: "blank image", kCal: "image unlike the calibration films"} {
		row := rows[k]
		for _, want := range []string{">not assessable</span>", "not scored: " + reason, "no alert: needs a human look"} {
			if !strings.Contains(row, want) {
				t.Errorf("not-assessable row lacks %q:\n%s", want, row)
			}
		}
		if strings.Contains(row, "<meter") || strings.Contains(row, "0.000") || strings.Contains(row, "Acknowledge") {
			t.Errorf("not-assessable row shows a score or an acknowledge button:\n%s", row)
		}
	}
	if !strings.Contains(rows[kRout], "<meter") {
		t.Error("the routine row lost its score")
	}
	if !strings.Contains(page, "<title>(1) triaged worklist · 2 not assessable</title>") {
		t.Errorf("title does not count the not-assessable films apart:\n%s", page[:400])
	}
	if !strings.Contains(page, `<span id="na">2</span> not assessable</a>`) || !strings.Contains(page, `href="/?tab=films&amp;priority=not_assessable"`) {
		t.Error("no header count linking to the not-assessable filter")
	}
	if !strings.Contains(page, `<option value="not_assessable">not assessable</option>`) {
		t.Error("the priority filter has no not-assessable choice")
	}

	_, page = get(t, http.DefaultClient, base+"/?priority=not_assessable")
	if keys, _ = rowsHTML(page); strings.Join(keys, ",") != kCal+","+kBlank {
		t.Errorf("not-assessable filter: rows %v", keys)
	}
	if !strings.Contains(page, `aria-current="page" title="Films the input-quality check stopped`) {
		t.Error("the active not-assessable chip is not marked current")
	}
	resp, err := http.Get(base + "/rows?priority=not_assessable")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Triaged-Not-Assessable") != "2" || resp.Header.Get("Triaged-Total") != "2" {
		t.Errorf("/rows headers %v", resp.Header)
	}

	resp, page = get(t, http.DefaultClient, base+"/film/"+kBlank)
	if resp.StatusCode != 200 {
		t.Fatalf("film view: %s", resp.Status)
	}
	for _, want := range []string{"<title>not assessable film", "Not assessable: blank image.", "needs a human look",
		"pixel standard deviation", "Not scored.", "No heatmap for this film (it was not scored)", "No alert to acknowledge."} {
		if !strings.Contains(page, want) {
			t.Errorf("film view lacks %q", want)
		}
	}
	for _, bad := range []string{"<meter", "ensemble score", "/overlay/", "Routine: no alert"} {
		if strings.Contains(page, bad) {
			t.Errorf("film view of a not-assessable film shows %q", bad)
		}
	}

	// A new one reaches an open page with the count.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() { // the stream is open: what follows is live
		t.Fatal("no event stream")
	}
	k := e.publishNotAssessable(notAssessable(5, "uniform", time.Now().UTC()))
	want := fmt.Sprintf(`"key":"%s"`, k)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, want) {
			if !strings.Contains(l, `"na":3`) || !strings.Contains(l, "nearly uniform image") || !strings.Contains(l, `"rank":2`) {
				t.Errorf("row event %s", l)
			}
			return
		}
	}
	t.Fatalf("no row event for the new not-assessable film: %v", sc.Err())
}
