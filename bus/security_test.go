package bus_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// connect opens the daemon's connection and checks that JetStream answers
// through it.
func connect(t *testing.T, url string, sec bus.Security) (string, error) {
	t.Helper()
	var logs bytes.Buffer
	nc, _, err := bus.Connect(bus.ConnectOptions{URL: url, Name: "test", Timeout: 5 * time.Second, Security: sec}, zerolog.New(&logs))
	if err != nil {
		return logs.String(), err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("connected, but JetStream does not answer: %v", err)
	}
	return logs.String(), nil
}

func refused(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("connection accepted, want it refused")
	}
	t.Logf("refused: %v", err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// Mutual TLS plus user/password: the right settings connect; a wrong
// password, a missing client certificate and an untrusted server are each
// refused with an error that says what to check, and no secret appears in
// errors or logs.
func TestTLSAndUserPassword(t *testing.T) {
	pki := natstest.NewPKI(t)
	const password = "s3cret-horse-battery"
	srv := testenv.NATSWith(t, &server.Options{
		TLSConfig: pki.ServerTLS(t), TLSVerify: true, TLSTimeout: 5,
		Users: []*server.User{{Username: "triaged", Password: password}},
	})
	url := strings.Replace(srv.ClientURL(), "nats://", "tls://", 1)
	good := bus.Security{
		CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey,
		User: "triaged", PasswordFile: natstest.WriteSecret(t, pki.Dir, "password", password),
	}
	if logs, err := connect(t, url, good); err != nil || strings.Contains(logs, password) {
		t.Fatalf("good settings: %v (logs %s)", err, logs)
	}

	wrong := good
	wrong.PasswordFile = natstest.WriteSecret(t, pki.Dir, "wrong", "not-the-password")
	_, err := connect(t, url, wrong)
	refused(t, err, "refused the credentials", `user "triaged"`, "Authorization Violation")
	if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), password) {
		t.Errorf("the error leaks a password: %v", err)
	}

	noCert := good
	noCert.CertFile, noCert.KeyFile = "", ""
	_, err = connect(t, url, noCert)
	refused(t, err)

	otherCA := good
	otherCA.CAFile = pki.OtherCAFile
	_, err = connect(t, url, otherCA)
	refused(t, err, "TLS handshake failed", "ca_file")

	missing := good
	missing.PasswordFile = pki.Dir + "/nope"
	_, err = connect(t, url, missing)
	refused(t, err, "nats.password_file")
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	srv := testenv.NATSWith(t, &server.Options{Authorization: "tok-123456"})
	if _, err := connect(t, srv.ClientURL(), bus.Security{TokenFile: natstest.WriteSecret(t, dir, "token", "tok-123456")}); err != nil {
		t.Fatal(err)
	}
	_, err := connect(t, srv.ClientURL(), bus.Security{TokenFile: natstest.WriteSecret(t, dir, "bad", "tok-654321")})
	refused(t, err, "refused the credentials", "token file")
	if strings.Contains(err.Error(), "tok-") {
		t.Errorf("the error leaks the token: %v", err)
	}
}

func TestNKey(t *testing.T) {
	dir := t.TempDir()
	user, seed := natstest.NKeyUser(t, dir, "user.nk")
	_, stranger := natstest.NKeyUser(t, dir, "stranger.nk")
	srv := testenv.NATSWith(t, &server.Options{Nkeys: []*server.NkeyUser{user}})
	if _, err := connect(t, srv.ClientURL(), bus.Security{NKeyFile: seed}); err != nil {
		t.Fatal(err)
	}
	_, err := connect(t, srv.ClientURL(), bus.Security{NKeyFile: stranger})
	refused(t, err, "refused the credentials", "NKey seed file")
	b, _ := os.ReadFile(stranger)
	if strings.Contains(err.Error(), strings.TrimSpace(string(b))) {
		t.Error("the error leaks the seed")
	}
}

// Decentralised auth: a .creds file from the trusted operator's account
// works; one signed by an unknown account is refused.
func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	op := natstest.NewOperator(t)
	srv := testenv.NATSWith(t, &server.Options{TrustedOperators: []*jwt.OperatorClaims{op.Claims}, AccountResolver: op.Resolver, SystemAccount: op.SystemAccount})
	if _, err := connect(t, srv.ClientURL(), bus.Security{CredentialsFile: op.Creds(t, dir, "triaged", false)}); err != nil {
		t.Fatal(err)
	}
	_, err := connect(t, srv.ClientURL(), bus.Security{CredentialsFile: op.Creds(t, dir, "forged", true)})
	refused(t, err, "refused the credentials", "credentials file")
}
