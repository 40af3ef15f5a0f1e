package inject_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/ferrycd/ferry/internal/testenv"
)

// plane is the control plane of the tests that need one, started by the first of them, so
// that the unit tests and fuzzers (whose every worker runs TestMain) go without.
var plane struct {
	once sync.Once
	cp   *testenv.ControlPlane
	err  error
}

// controlPlane returns the package's control plane, starting it on first use; the package
// fails, not skips, when it cannot start.
func controlPlane(t testing.TB) *testenv.ControlPlane {
	t.Helper()
	plane.once.Do(func() {
		plane.cp, plane.err = testenv.Start(context.Background(), testenv.Options{})
	})
	if plane.err != nil {
		t.Fatalf("start control plane: %v", plane.err)
	}
	return plane.cp
}

func TestMain(m *testing.M) {
	code := m.Run()
	if plane.cp != nil {
		if err := plane.cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stop control plane: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}
