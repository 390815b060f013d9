// Package testkit holds nothing itself: its subpackages are the test-only
// helpers (testenv: the shared data set, models, embedded NATS, waiting,
// reading the record; natstest: submitting films, clusters, PKI), kept
// apart from the production packages under internal/. Only _test.go files
// import them; `go list -deps ./cmd/triaged` shows none.
package testkit
