package pacs_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// TestMain fails the package's tests if any goroutine is still running
// once they have all finished: the deliveries stop with their context.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testenv.KnownGoroutines()...)
}
