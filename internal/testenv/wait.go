package testenv

import (
	"context"
	"testing"
	"time"
)

// Eventually polls ok every 100 ms until it holds, and fails the test if it has not within
// 90 seconds. The deadline only ends a hung test; it is not a timing assertion.
func Eventually(t testing.TB, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("never: %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
