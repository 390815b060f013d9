package dataset

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// TestMain fails the package's tests if any goroutine is still running
// once they have all finished: everything this package starts must stop
// with its context or its Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testenv.KnownGoroutines()...)
}
