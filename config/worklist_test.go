package config

import (
	"strings"
	"testing"
)

func TestWorklistValidation(t *testing.T) {
	for _, c := range []struct {
		w    Worklist
		want string // "" = valid
	}{
		{Worklist{}, ""},
		{Worklist{Listen: "127.0.0.1:8044"}, ""},
		{Worklist{Listen: "[::1]:8044"}, ""},
		{Worklist{Listen: "localhost:8044"}, ""},
		{Worklist{Listen: ":8044"}, "anonymous"},
		{Worklist{Listen: "0.0.0.0:8044"}, "anonymous"},
		{Worklist{Listen: "0.0.0.0:8044", UsersFile: "users"}, ""},
		{Worklist{Listen: "8044"}, "host:port"},
		{Worklist{Listen: "0.0.0.0:8044", ProxyHeader: "X-Remote-User"}, "trusted_proxies"},
		{Worklist{Listen: "0.0.0.0:8044", ProxyHeader: "X-Remote-User", TrustedProxies: []string{"10.0.0.0/8", "192.0.2.1"}}, ""},
		{Worklist{Listen: "0.0.0.0:8044", ProxyHeader: "X-Remote-User", TrustedProxies: []string{"proxy.example"}}, "trusted_proxies[0]"},
		{Worklist{Listen: "0.0.0.0:8044", ClientCAFile: "ca.pem"}, "need TLS"},
		{Worklist{Listen: "127.0.0.1:8044", CertFile: "c.pem"}, "go together"},
		{Worklist{Listen: "127.0.0.1:8044", ViewerURL: "https://pacs.example/viewer?StudyInstanceUIDs={study}"}, ""},
		{Worklist{Listen: "127.0.0.1:8044", ViewerURL: "https://pacs.example/viewer"}, "{study}"},
		{Worklist{Listen: "127.0.0.1:8044", ViewerURL: "javascript:alert(1)//{study}"}, "http(s)"},
		{Worklist{Listen: "127.0.0.1:8044", MaxFilms: -1}, "max_films"},
	} {
		cfg := Default()
		cfg.Worklist = c.w
		ps := cfg.ValidateWorklist()
		switch {
		case c.want == "" && len(ps) > 0:
			t.Errorf("%+v: %v", c.w, ps)
		case c.want != "" && !strings.Contains(ps.Error(), c.want):
			t.Errorf("%+v: %v, want %q", c.w, ps, c.want)
		}
	}
}

func TestWorklistYAML(t *testing.T) {
	cfg, err := Parse([]byte("worklist:\n  listen: 127.0.0.1:8044\n  users_file: users\n  viewer_url: https://pacs.example/v?s={study}\n"), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.WorklistResolved()
	if w.Listen != "127.0.0.1:8044" || w.UsersFile != "/etc/triaged/users" {
		t.Errorf("resolved %+v", w)
	}
	if _, err := Parse([]byte("worklist:\n  listn: x\n"), "/etc/triaged"); err == nil {
		t.Error("an unknown worklist key was accepted")
	}
}
