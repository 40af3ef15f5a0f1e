package testenv

import (
	"context"
	"io"
	"strings"
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

// LogWriter sends what is written to it to t's log, one call a line, so a component's slog
// output shows only when a test fails.
func LogWriter(t testing.TB) io.Writer { return logWriter{t} }

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Run runs start in the background until the test ends, then cancels its context and reports
// the error it returns.
func Run(t testing.TB, start func(context.Context) error) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- start(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}
