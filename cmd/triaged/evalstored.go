package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/eval"
	"github.com/triaged/triaged/publish"
)

// storedFlags are `model eval -stored`: the results the daemon stored,
// live and shadow, joined with labels collected later (issue 19).
type storedFlags struct {
	stored                                  *bool
	server, subject, modelSet, since, until *string
}

func addStoredFlags(fs *flags) storedFlags {
	sf := storedFlags{
		stored:   fs.Bool("stored", false, "evaluate the results stored on NATS instead of scoring files: -labels is then a CSV of sop_instance_uid (or study_instance_uid) and label, and each model set (live and shadow) is reported side by side"),
		server:   fs.String("server", "", "with -stored: NATS URL (default from the config)"),
		subject:  fs.String("subject", "live,shadow", "with -stored: comma-separated result subjects; live and shadow stand for <prefix>.result and <prefix>.shadow.result"),
		modelSet: fs.String("model-set", "", "with -stored: comma-separated model set IDs to keep (ms-...; default all)"),
		since:    fs.String("since", "", "with -stored: results scored at or after this time (RFC 3339, a date YYYY-MM-DD, or a duration ago such as 720h)"),
		until:    fs.String("until", "", "with -stored: results scored before this time (same forms)"),
	}
	fs.Var(fs.Lookup("server").Value, "nats", "with -stored: the same as -server")
	return sf
}

// parseWhen reads an instant: RFC 3339, a UTC date, or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a date YYYY-MM-DD or a duration such as 720h", s)
}

// query turns the flags into a stored-results query.
func (sf storedFlags) query(cfg *config.Config, now time.Time) (eval.StoredQuery, error) {
	q := eval.StoredQuery{Stream: cfg.NATS.ResultStream.Name}
	for _, s := range strings.Split(*sf.subject, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case "live":
			q.Subjects = append(q.Subjects, cfg.NATS.SubjectPrefix+"."+publish.SubjectResult)
		case "shadow":
			q.Subjects = append(q.Subjects, cfg.NATS.SubjectPrefix+"."+publish.SubjectShadowResult)
		default:
			q.Subjects = append(q.Subjects, s)
		}
	}
	if len(q.Subjects) == 0 {
		return q, fmt.Errorf("-subject names no subject")
	}
	for _, m := range strings.Split(*sf.modelSet, ",") {
		if m = strings.TrimSpace(m); m != "" {
			q.ModelSets = append(q.ModelSets, m)
		}
	}
	var err error
	if q.Since, err = parseWhen(*sf.since, now); err != nil {
		return q, fmt.Errorf("-since: %w", err)
	}
	if q.Until, err = parseWhen(*sf.until, now); err != nil {
		return q, fmt.Errorf("-until: %w", err)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, fmt.Errorf("-since %s is not before -until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	return q, nil
}

// run evaluates the stored results and writes report.json and report.md
// into out.
func (sf storedFlags) run(cfgPath, labelsPath, out string, stdout, stderr io.Writer) int {
	if labelsPath == "" {
		fmt.Fprintln(stderr, "triaged: -stored needs -labels: a CSV of sop_instance_uid (or study_instance_uid) and label")
		return 2
	}
	labels, err := eval.LoadUIDLabels(labelsPath)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 2
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	q, err := sf.query(cfg, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 2
	}
	nc, js, err := dialJetStream(cfg, *sf.server, "triaged model eval")
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	defer nc.Close()
	rs, st, err := eval.ReadStored(context.Background(), js, q)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	rep := eval.CompareStored(filepath.Base(labelsPath), rs, labels)
	rep.Read = st
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	md := rep.Markdown()
	for name, data := range map[string][]byte{"report.json": append(b, '\n'), "report.md": []byte(md)} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			return 1
		}
	}
	fmt.Fprint(stdout, md)
	fmt.Fprintf(stdout, "\nwrote %s and %s\n", filepath.Join(out, "report.json"), filepath.Join(out, "report.md"))
	if len(rep.Sets) == 0 {
		fmt.Fprintf(stderr, "triaged: no stored results on %s in %s match the selection (%d messages read)\n", strings.Join(q.Subjects, ", "), q.Stream, st.Messages)
		return 1
	}
	return 0
}
