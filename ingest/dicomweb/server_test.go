package dicomweb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

type testServer struct {
	url  string // the service root, ending in /dicomweb
	srv  *Server
	dir  string // the drop folder
	logs *bytes.Buffer
}

// serve starts a server on a loopback port from the OS and stops it at the
// end of the test, checking Serve returned nil.
func serve(t testing.TB, o Options, so spool.Options) *testServer {
	t.Helper()
	dir := t.TempDir()
	sp, err := spool.Open(dir, so)
	if err != nil {
		t.Fatal(err)
	}
	o.Spool = sp
	logs := &bytes.Buffer{}
	o.Log = zerolog.New(&syncWriter{w: logs})
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln := testenv.Serve(t, srv.Serve)
	scheme := "http"
	if o.CertFile != "" {
		scheme = "https"
	}
	return &testServer{url: scheme + "://" + ln.Addr().String() + "/dicomweb", srv: srv, dir: dir, logs: logs}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

type part struct {
	ctype string
	data  []byte
}

func dicomParts(files ...[]byte) []part {
	ps := make([]part, len(files))
	for i, f := range files {
		ps[i] = part{"application/dicom", f}
	}
	return ps
}

// multipartBody is a STOW-RS request body and its Content-Type.
func multipartBody(t testing.TB, parts ...part) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {p.ctype}})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	mw.Close()
	return `multipart/related; type="application/dicom"; boundary=` + mw.Boundary(), b.Bytes()
}

// stowResponse is the parts of a store-instances response the tests read.
type stowResponse struct {
	Stored []Instance
	Failed []struct {
		Instance
		Reason uint16
	}
}

func post(t testing.TB, c *http.Client, url, ctype string, body io.Reader, token string) (int, stowResponse) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/dicom+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out stowResponse
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/dicom+json") {
		out = parseResponse(t, raw)
	}
	return resp.StatusCode, out
}

func parseResponse(t testing.TB, raw []byte) stowResponse {
	t.Helper()
	var m map[string]struct {
		VR    string                       `json:"vr"`
		Value []map[string]json.RawMessage `json:"Value"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("response is not DICOM JSON: %v: %s", err, raw)
	}
	str := func(item map[string]json.RawMessage, tag string) string {
		var a struct{ Value []string }
		json.Unmarshal(item[tag], &a)
		if len(a.Value) == 0 {
			return ""
		}
		return a.Value[0]
	}
	var out stowResponse
	for _, item := range m["00081199"].Value {
		out.Stored = append(out.Stored, Instance{SOPClassUID: str(item, "00081150"), SOPInstanceUID: str(item, "00081155")})
	}
	for _, item := range m["00081198"].Value {
		var r struct{ Value []uint16 }
		json.Unmarshal(item["00081197"], &r)
		f := struct {
			Instance
			Reason uint16
		}{Instance: Instance{SOPClassUID: str(item, "00081150"), SOPInstanceUID: str(item, "00081155")}}
		if len(r.Value) == 1 {
			f.Reason = r.Value[0]
		}
		out.Failed = append(out.Failed, f)
	}
	return out
}

// spooled lists the films committed to the drop folder, and fails the test
// if anything is left in the spool's temporary area.
func spooled(t testing.TB, dir string) []string {
	t.Helper()
	tmp, _ := os.ReadDir(filepath.Join(dir, ".spool"))
	for _, e := range tmp {
		t.Errorf("left in the spool's temporary area: %s", e.Name())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func sharedFilms(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range []string{"original", "derived"} {
		ents, err := os.ReadDir(testenv.DICOM(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(testenv.DICOM(t, dir), e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[dir+"/"+e.Name()] = b
		}
	}
	return out
}

// Every shared film in one request: all stored, byte for byte, each named
// in the response by the UIDs the decoder reads.
func TestStoreSharedFilms(t *testing.T) {
	testenv.SharedData(t)
	if testing.Short() {
		t.Skip("skipping under -short: posts the shared films (22 MB, fsynced)")
	}
	films := sharedFilms(t)
	ts := serve(t, Options{}, spool.Options{MinFreeBytes: 1})
	var files [][]byte
	want := map[[32]byte]bool{}
	uids := map[string]bool{}
	for _, b := range films {
		files = append(files, b)
		want[sha256.Sum256(b)] = true
		h, err := decode.ReadHeader(bytes.NewReader(b), int64(len(b)), decode.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		uids[h.SOPInstanceUID] = true
	}
	ctype, body := multipartBody(t, dicomParts(files...)...)
	status, resp := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), "")
	if status != http.StatusOK || len(resp.Stored) != len(files) || len(resp.Failed) != 0 {
		t.Fatalf("status %d, %d stored, %d failed; want 200 and %d stored", status, len(resp.Stored), len(resp.Failed), len(files))
	}
	for _, s := range resp.Stored {
		if !uids[s.SOPInstanceUID] || !validUID(s.SOPClassUID) {
			t.Errorf("response names %+v, not one of the films sent", s)
		}
	}
	got := spooled(t, ts.dir)
	if len(got) != len(files) {
		t.Fatalf("%d films in the drop folder, want %d", len(got), len(files))
	}
	for _, p := range got {
		b, _ := os.ReadFile(p)
		if !want[sha256.Sum256(b)] {
			t.Errorf("%s is not byte-identical to any film sent", filepath.Base(p))
		}
		if !strings.HasPrefix(filepath.Base(p), "dicomweb-anonymous-") {
			t.Errorf("spool name %s does not say stow from anonymous", filepath.Base(p))
		}
	}
	st := ts.srv.Stats()
	if st.Stored != uint64(len(files)) || st.Durable.Count != uint64(len(files)) || st.Requests[200] != 1 {
		t.Errorf("stats %+v", st)
	}
	for u := range uids {
		if strings.Contains(ts.logs.String(), u) {
			t.Errorf("a SOP Instance UID appears in the log: %s", ts.logs.String())
		}
	}
	t.Logf("log: %s", ts.logs.String())
}

func TestStudyInURL(t *testing.T) {
	ts := serve(t, Options{}, spool.Options{MinFreeBytes: 1})
	good := dicomtest.Good().Bytes()
	other := dicomtest.Film("1.2.826.0.1.3680043.10.1234.2.9", 32, 32, "")
	ctype, body := multipartBody(t, dicomParts(good)...)
	if status, resp := post(t, nil, ts.url+"/studies/"+testStudy, ctype, bytes.NewReader(body), ""); status != 200 || len(resp.Stored) != 1 {
		t.Fatalf("matching study: status %d %+v", status, resp)
	}
	status, resp := post(t, nil, ts.url+"/studies/1.2.3.4", ctype, bytes.NewReader(body), "")
	if status != http.StatusConflict || len(resp.Failed) != 1 || resp.Failed[0].Reason != ReasonMismatch ||
		resp.Failed[0].SOPInstanceUID != "1.2.826.0.1.3680043.10.1234.2.1" {
		t.Fatalf("other study: status %d %+v, want 409 and A900", status, resp)
	}
	// One film of the study, one not: 202.
	ctype, body = multipartBody(t, dicomParts(good, bytes.Replace(other, []byte(testStudy), []byte("1.2.826.0.1.3680043.10.1234.7"), 1))...)
	status, resp = post(t, nil, ts.url+"/studies/"+testStudy, ctype, bytes.NewReader(body), "")
	if status != http.StatusAccepted || len(resp.Stored) != 1 || len(resp.Failed) != 1 || resp.Failed[0].Reason != ReasonMismatch {
		t.Fatalf("mixed: status %d %+v, want 202", status, resp)
	}
	if n := len(spooled(t, ts.dir)); n != 2 {
		t.Fatalf("%d films stored, want 2", n)
	}
	if status, _ := post(t, nil, ts.url+"/studies/not-a-uid", ctype, bytes.NewReader(body), ""); status != http.StatusBadRequest {
		t.Fatalf("malformed study UID: status %d, want 400", status)
	}
}

func TestMediaTypesAndBoundary(t *testing.T) {
	ts := serve(t, Options{}, spool.Options{MinFreeBytes: 1})
	good := dicomtest.Good().Bytes()
	ctype, body := multipartBody(t, dicomParts(good)...)
	boundary := ctype[strings.Index(ctype, "boundary=")+len("boundary="):]
	for _, c := range []struct {
		name, ctype string
		want        int
	}{
		{"no boundary", `multipart/related; type="application/dicom"`, 400},
		{"not multipart", "application/dicom", 415},
		{"json metadata", `multipart/related; type="application/dicom+json"; boundary=` + boundary, 415},
		{"garbage", "???", 415},
		{"wrong boundary", `multipart/related; type="application/dicom"; boundary=nothere`, 400},
		{"no type parameter", "multipart/related; boundary=" + boundary, 200},
	} {
		if status, _ := post(t, nil, ts.url+"/studies", c.ctype, bytes.NewReader(body), ""); status != c.want {
			t.Errorf("%s: status %d, want %d", c.name, status, c.want)
		}
	}
	ctype, body = multipartBody(t, part{"image/jpeg", []byte("\xff\xd8\xff not dicom")})
	if status, resp := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), ""); status != 415 || len(resp.Failed) != 1 || resp.Failed[0].Reason != ReasonUnderstand {
		t.Errorf("a jpeg part: status %d %+v, want 415 with C000", status, resp)
	}
	ctype, body = multipartBody(t, part{"image/jpeg", []byte("x")}, part{"application/dicom", good})
	if status, resp := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), ""); status != 202 || len(resp.Stored) != 1 {
		t.Errorf("a jpeg part and a film: status %d %+v, want 202", status, resp)
	}
	ctype, body = multipartBody(t)
	if status, _ := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), ""); status != 400 {
		t.Errorf("no parts: status %d, want 400", status)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/studies", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Errorf("GET: %v, want 405", err)
	} else {
		resp.Body.Close() // an unread body keeps the client's connection (and its goroutines) busy
		if resp.StatusCode != 405 {
			t.Errorf("GET: status %d, want 405", resp.StatusCode)
		}
	}
	if n := len(spooled(t, ts.dir)); n != 2 {
		t.Fatalf("%d films stored, want 2", n)
	}
}

// A film cut short inside a well-formed body, and a body cut short inside
// a film: cannot understand, nothing left behind.
func TestTruncated(t *testing.T) {
	ts := serve(t, Options{}, spool.Options{MinFreeBytes: 1})
	good := dicomtest.Good().Bytes()
	ctype, body := multipartBody(t, dicomParts(good[:len(good)-1000])...)
	status, resp := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), "")
	if status != 409 || len(resp.Failed) != 1 || resp.Failed[0].Reason != ReasonUnderstand || resp.Failed[0].SOPInstanceUID == "" {
		t.Fatalf("truncated film: status %d %+v, want 409, C000 naming the instance", status, resp)
	}
	ctype, body = multipartBody(t, dicomParts(good, good)...)
	cut := body[:len(body)-2000]
	status, resp = post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(cut), "")
	if status != 202 || len(resp.Stored) != 1 || len(resp.Failed) != 1 || resp.Failed[0].Reason != ReasonUnderstand {
		t.Fatalf("body cut inside the second film: status %d %+v, want 202", status, resp)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"random bytes", bytes.Repeat([]byte("noise"), 1000)}, {"no preamble", good[132:]}} {
		ctype, body = multipartBody(t, dicomParts(c.data)...)
		if status, resp := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), ""); status != 409 || resp.Failed[0].Reason != ReasonUnderstand {
			t.Errorf("%s: status %d %+v", c.name, status, resp)
		}
	}
	if n := len(spooled(t, ts.dir)); n != 1 {
		t.Fatalf("%d films stored, want 1", n)
	}
}

func writeTokens(t testing.TB, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTokens(t *testing.T) {
	tokens := writeTokens(t, "# senders", "pacs-east aaaaaaaaaaaaaaaaaaaaaaaa", "", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	ts := serve(t, Options{TokenFile: tokens}, spool.Options{MinFreeBytes: 1})
	ctype, body := multipartBody(t, dicomParts(dicomtest.Good().Bytes())...)
	for _, c := range []struct {
		token string
		want  int
	}{
		{"", 401}, {"wrong-token-wrong-token", 401}, {"aaaaaaaaaaaaaaaaaaaaaaa", 401}, {"aaaaaaaaaaaaaaaaaaaaaaaaa", 401},
		{"aaaaaaaaaaaaaaaaaaaaaaaa", 200}, {"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 200},
	} {
		if status, _ := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), c.token); status != c.want {
			t.Errorf("token %q: status %d, want %d", c.token, status, c.want)
		}
	}
	names := spooled(t, ts.dir)
	if len(names) != 2 {
		t.Fatalf("%d stored, want 2", len(names))
	}
	senders := map[string]bool{}
	for _, n := range names {
		_, sender := spool.Origin(filepath.Base(n))
		senders[sender] = true
	}
	if !senders["pacs_east"] || !senders["token4"] {
		t.Errorf("senders %v, want pacs_east and token4", senders)
	}
	if st := ts.srv.Stats(); st.Requests[401] != 4 {
		t.Errorf("401s counted %d, want 4", st.Requests[401])
	}
	if strings.Contains(ts.logs.String(), "aaaaaaaa") {
		t.Errorf("a token appears in the log")
	}
	for _, bad := range [][]string{{"short"}, {"# only a comment"}, {"a b c"}} {
		if _, err := New(Options{Spool: ts.srv.o.Spool, TokenFile: writeTokens(t, bad...)}); err == nil {
			t.Errorf("token file %q accepted", bad)
		}
	}
}

func TestAnonymousOnlyOnLoopback(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), spool.Options{MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Spool: sp})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ":0") // every interface: not loopback
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "anonymous access is allowed only on a loopback address") {
		t.Fatalf("Serve on %s without authentication: %v", ln.Addr(), err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the refused listener still accepts connections")
	}
}

func TestClientCertificates(t *testing.T) {
	pki := natstest.NewPKI(t)
	ts := serve(t, Options{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile}, spool.Options{MinFreeBytes: 1})
	caPEM, _ := os.ReadFile(pki.CAFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, ServerName: "localhost"}}}
	}
	ctype, body := multipartBody(t, dicomParts(dicomtest.Good().Bytes())...)
	if status, resp := post(t, client(cert), ts.url+"/studies", ctype, bytes.NewReader(body), ""); status != 200 || len(resp.Stored) != 1 {
		t.Fatalf("with a client certificate: %d %+v", status, resp)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/studies", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if resp, err := client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("without a client certificate: %d, want a refused handshake", resp.StatusCode)
	}
	if n := len(spooled(t, ts.dir)); n != 1 {
		t.Fatalf("%d stored, want 1", n)
	}
}

// Disk "full": the spool's free-space floor above what the disk has. Every
// instance is refused as out of resources, named by its UIDs, nothing is
// left behind, and the server keeps serving.
func TestDiskFull(t *testing.T) {
	ts := serve(t, Options{}, spool.Options{MinFreeBytes: 1 << 62})
	good := dicomtest.Good().Bytes()
	ctype, body := multipartBody(t, dicomParts(good, good)...)
	status, resp := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), "")
	if status != 409 || len(resp.Failed) != 2 || resp.Failed[0].Reason != ReasonResources || resp.Failed[0].SOPInstanceUID == "" {
		t.Fatalf("disk full: status %d %+v, want 409 with A700", status, resp)
	}
	if n := len(spooled(t, ts.dir)); n != 0 {
		t.Fatalf("%d stored with a full disk", n)
	}
	if st := ts.srv.Stats(); st.Failed[ReasonResources] != 2 {
		t.Errorf("stats %+v", st)
	}
}

// endless is a multipart body whose one part is a film header followed by
// size bytes of pixel data, generated as it is read: never allocated.
type endless struct {
	head, tail []byte
	left       int64
	chunk      []byte
}

func newEndless(boundary string, size int64) *endless {
	im := dicomtest.Good()
	pd := dicomtest.Elem{Tag: dicomtest.Tag(0x7FE0, 0x0010), VR: "OW", Length: size}
	im.PixelData = &pd
	film := im.Bytes()
	head := "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n" + string(film)
	return &endless{head: []byte(head), tail: []byte("\r\n--" + boundary + "--\r\n"), left: size, chunk: make([]byte, 64<<10)}
}

func (e *endless) Read(p []byte) (int, error) {
	switch {
	case len(e.head) > 0:
		n := copy(p, e.head)
		e.head = e.head[n:]
		return n, nil
	case e.left > 0:
		n := copy(p, e.chunk[:min(int64(len(e.chunk)), e.left)])
		e.left -= int64(n)
		return n, nil
	case len(e.tail) > 0:
		n := copy(p, e.tail)
		e.tail = e.tail[n:]
		return n, nil
	}
	return 0, io.EOF
}

// A 2 GiB part against a 64 MiB instance limit: 413, the server's memory
// stays flat, nothing is left behind.
func TestHugePart(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping under -short: streams 64 MiB and more")
	}
	ts := serve(t, Options{MaxInstanceBytes: 64 << 20}, spool.Options{MinFreeBytes: 1})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
	}()
	const boundary = "hugehugehuge"
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/studies", newEndless(boundary, 2<<30))
	req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+boundary)
	resp, err := http.DefaultClient.Do(req)
	close(stop)
	<-sampled
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	} else if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "broken pipe") {
		// The server may close before the client has read the 413.
		t.Fatalf("POST: %v", err)
	}
	if grow := int64(peak) - int64(base); grow > 32<<20 {
		t.Errorf("heap grew by %d MiB receiving a 2 GiB part", grow>>20)
	}
	if n := len(spooled(t, ts.dir)); n != 0 {
		t.Fatalf("%d stored", n)
	}
	st := ts.srv.Stats()
	if st.Requests[413] != 1 || st.Failed[ReasonResources] != 1 || st.Bytes > 65<<20 {
		t.Errorf("stats %+v: want one 413, one A700, at most 65 MiB read", st)
	}
	t.Logf("heap before %d MiB, peak %d MiB; %d bytes read", base>>20, peak>>20, st.Bytes)
	// And a request over the request limit by its Content-Length, refused
	// before a byte of it is read.
	ts2 := serve(t, Options{MaxRequestBytes: 1 << 20}, spool.Options{MinFreeBytes: 1})
	ctype, body := multipartBody(t, dicomParts(make([]byte, 2<<20))...)
	if status, _ := post(t, nil, ts2.url+"/studies", ctype, bytes.NewReader(body), ""); status != 413 {
		t.Errorf("request over the limit: status %d, want 413", status)
	}
}

func TestServeStops(t *testing.T) {
	before := runtime.NumGoroutine()
	sp, err := spool.Open(t.TempDir(), spool.Options{MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Spool: sp, ShutdownGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	// A sender stalled in the middle of a film when the daemon stops.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("--b\r\nContent-Type: application/dicom\r\n\r\n"))
		pw.Write(dicomtest.Good().Bytes()[:500])
	}()
	req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/dicomweb/studies", pr)
	req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=b`)
	tr := &http.Transport{}
	errc := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	pw.Close()
	<-errc
	tr.CloseIdleConnections()
	if n := len(spooled(t, sp.Dir())); n != 0 {
		t.Fatalf("%d stored from a cut-off request", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Serve returned, %d before", n, before)
	}
}

// A sender that stalls inside a film is cut off after BodyTimeout, and
// while it holds the only request slot a second sender is told to retry.
func TestStallAndBusy(t *testing.T) {
	ts := serve(t, Options{BodyTimeout: 500 * time.Millisecond, MaxConcurrent: 1}, spool.Options{MinFreeBytes: 1})
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		pw.Write([]byte("--b\r\nContent-Type: application/dicom\r\n\r\n"))
		pw.Write(dicomtest.Good().Bytes()[:500])
	}()
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/studies", pr)
	req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=b`)
	start := time.Now()
	type answer struct {
		status int
		err    error
	}
	stalled := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			stalled <- answer{err: err}
			return
		}
		resp.Body.Close()
		stalled <- answer{status: resp.StatusCode}
	}()
	time.Sleep(100 * time.Millisecond)
	ctype, body := multipartBody(t, dicomParts(dicomtest.Good().Bytes())...)
	if status, _ := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), ""); status != http.StatusServiceUnavailable {
		t.Errorf("second request while the slot is taken: %d, want 503", status)
	}
	a := <-stalled
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stalled sender cut off after %v", took)
	}
	if a.err == nil && a.status != http.StatusConflict {
		t.Errorf("stalled sender: status %d, want 409 (or a cut connection)", a.status)
	}
	if n := len(spooled(t, ts.dir)); n != 0 {
		t.Fatalf("%d stored from a stalled sender", n)
	}
	if status, _ := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), ""); status != 200 {
		t.Errorf("after the stalled sender: %d, want 200", status)
	}
}

func TestSOPClassFilter(t *testing.T) {
	ts := serve(t, Options{AcceptSOPClass: func(uid string) bool { return uid == "1.2.840.10008.5.1.4.1.1.1" }}, spool.Options{MinFreeBytes: 1})
	ctype, body := multipartBody(t, dicomParts(dicomtest.Good().Bytes())...) // DX for presentation
	status, resp := post(t, nil, ts.url+"/studies", ctype, bytes.NewReader(body), "")
	if status != 409 || len(resp.Failed) != 1 || resp.Failed[0].Reason != ReasonSOPClass || resp.Failed[0].SOPClassUID != "1.2.840.10008.5.1.4.1.1.1.1" {
		t.Fatalf("refused SOP class: %d %+v, want 409 with 0122", status, resp)
	}
	if n := len(spooled(t, ts.dir)); n != 0 {
		t.Fatalf("%d stored", n)
	}
}

// A part whose headers never end: the multipart reader gives up at its
// 10 MiB header limit (Go's), the request gets 400, nothing is stored.
func TestEndlessPartHeader(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping under -short: streams 16 MiB")
	}
	ts := serve(t, Options{}, spool.Options{MinFreeBytes: 1})
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("--b\r\nContent-Type: application/dicom\r\n"))
		line := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
		for i := 0; i < 16<<10; i++ {
			if _, err := pw.Write(line); err != nil {
				return
			}
		}
		pw.Close()
	}()
	defer pr.Close()
	status, _ := post(t, nil, ts.url+"/studies", `multipart/related; type="application/dicom"; boundary=b`, pr, "")
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	if n := len(spooled(t, ts.dir)); n != 0 {
		t.Fatalf("%d stored", n)
	}
}
