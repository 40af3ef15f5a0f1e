package delivery

import (
	"errors"
	"fmt"
)

// The kinds of failure a sync step can have. The reconciler decides from the kind whether
// and when to retry; the reason is what `kubectl get application -o yaml` shows.
var (
	// errStalled is a failure that retrying cannot fix until the commit or the spec changes:
	// a manifest that does not render or that the API server refuses.
	errStalled = errors.New("stalled")
	// errWaiting is a failure outside the Application that may pass by itself: git or the
	// API server unreachable, credentials not yet present.
	errWaiting = errors.New("waiting")
)

// stepError is one failed step, with the condition reason it sets.
type stepError struct {
	kind   error // errStalled or errWaiting
	reason string
	err    error
}

func (e *stepError) Error() string { return e.err.Error() }

func (e *stepError) Unwrap() []error { return []error{e.kind, e.err} }

func stalled(reason string, format string, args ...any) error {
	return &stepError{kind: errStalled, reason: reason, err: fmt.Errorf(format, args...)}
}

func waiting(reason string, format string, args ...any) error {
	return &stepError{kind: errWaiting, reason: reason, err: fmt.Errorf(format, args...)}
}

// reasonOf returns the condition reason of err, or def for an unclassified error.
func reasonOf(err error, def string) string {
	var se *stepError
	if errors.As(err, &se) {
		return se.reason
	}
	return def
}
