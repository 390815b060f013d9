package deliver_test

import (
	"testing"
	"time"

	"github.com/triaged/triaged/deliver"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"120":                           2 * time.Minute,
		"0":                             0,
		"99999999999":                   deliver.MaxRetryAfter,
		"Sun, 29 Nov 2026 03:00:30 GMT": 30 * time.Second,
		"Sun, 29 Nov 2026 02:00:00 GMT": 0,
	} {
		got, ok := deliver.ParseRetryAfter(v, now)
		if !ok || got != want {
			t.Errorf("%q: %s %v, want %s", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "-1", "soon", "1.5"} {
		if _, ok := deliver.ParseRetryAfter(v, now); ok {
			t.Errorf("%q accepted", v)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "3600", "Sun, 29 Nov 2026 03:00:30 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "18446744073709551616", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := deliver.ParseRetryAfter(v, time.Now())
		if d < 0 || d > deliver.MaxRetryAfter || (!ok && d != 0) {
			t.Fatalf("%q: %s %v", v, d, ok)
		}
	})
}

func TestDecodeEvent(t *testing.T) {
	key := []byte("0123456789abcdef")
	alert := `{"kind":"alert","message_id":"1.2.3:ms-a:critical","priority":"critical","score":0.9}`
	ev, err := deliver.DecodeEvent("triaged", "triaged.alert.critical", []byte(alert), key)
	if err != nil || ev.Kind != deliver.KindAlert || ev.ModelSet != "ms-a" || ev.Priority != "critical" ||
		ev.TriageID != deliver.TriageID(key, "1.2.3:ms-a:critical") || !deliver.LooksLikeTriageID(ev.TriageID) {
		t.Fatalf("%+v %v", ev, err)
	}
	ack := `{"kind":"ack","alert_id":"1.2.3:ms-a:urgent","by":"x","via":"cli"}`
	ev, err = deliver.DecodeEvent("triaged", "triaged.alert.ack", []byte(ack), key)
	if err != nil || ev.Kind != deliver.KindAck || ev.Priority != "urgent" || ev.ID != "1.2.3:ms-a:urgent:ack" {
		t.Fatalf("%+v %v", ev, err)
	}
	for name, c := range map[string][2]string{
		"subject disagrees": {"triaged.alert.urgent", alert},
		"not JSON":          {"triaged.alert.critical", "{"},
		"other prefix":      {"x.alert.critical", alert},
		"ack without alert": {"triaged.alert.ack", `{"by":"x"}`},
		"bad alert ID":      {"triaged.alert.ack", `{"alert_id":"nocolon"}`},
		"unknown priority":  {"triaged.alert.routine", `{"message_id":"1:ms:routine","priority":"routine"}`},
	} {
		if _, err := deliver.DecodeEvent("triaged", c[0], []byte(c[1]), key); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add("triaged.alert.critical", []byte(`{"kind":"alert","message_id":"1.2.3:ms-a:critical","priority":"critical"}`))
	f.Add("triaged.alert.ack", []byte(`{"alert_id":"1.2.3:ms-a:urgent","by":"x"}`))
	f.Add("triaged.alert.update", []byte(`{"message_id":"u","alert_id":"1:ms:critical"}`))
	f.Add("triaged.alert.urgent", []byte(`null`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		ev, err := deliver.DecodeEvent("triaged", subject, data, []byte("0123456789abcdef"))
		if err != nil {
			return
		}
		if ev.ID == "" || ev.TriageID == "" || (ev.Priority != "critical" && ev.Priority != "urgent") {
			t.Fatalf("decoded an incomplete event: %+v", ev)
		}
		if (ev.Kind == deliver.KindAlert) != (ev.Alert != nil) || (ev.Kind == deliver.KindAck) != (ev.Ack != nil) {
			t.Fatalf("kind %s without its body", ev.Kind)
		}
	})
}
