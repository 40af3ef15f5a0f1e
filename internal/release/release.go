// Package release defines Ferry's release, an application at a git revision deployed to an
// environment at a time, and the timeline of events joined on it. It holds the domain rules
// (what a valid release or event is, how a release finishes) and no storage code.
package release

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// ErrNotFound reports that a release does not exist. Callers match it with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrInvalid reports input that breaks a domain rule; the wrapping error says which.
var ErrInvalid = errors.New("invalid input")

// ErrConflict reports a request that is valid but contradicts the current state, such as
// finishing a release that has already finished.
var ErrConflict = errors.New("conflict")

// DefaultLimit is the page size used when a filter leaves Limit at zero.
const DefaultLimit = 50

// MaxLimit is the largest page size; larger limits are lowered to it.
const MaxLimit = 500

// Result is the outcome of a release's deploy.
type Result string

// The results a release can have. A release starts pending and finishes exactly once.
const (
	ResultPending   Result = "pending"
	ResultSucceeded Result = "succeeded"
	ResultFailed    Result = "failed"
)

// Valid reports whether r is one of the defined results.
func (r Result) Valid() bool {
	switch r {
	case ResultPending, ResultSucceeded, ResultFailed:
		return true
	}
	return false
}

// Release is one deploy of an application's revision to an environment. Releases are not
// unique on (Application, Environment, Revision): a rollback deploys an old revision again
// as a new release.
type Release struct {
	ID            int64      `json:"id"`
	Application   string     `json:"application"`
	Environment   string     `json:"environment"`
	Revision      string     `json:"revision"`
	CommitMessage string     `json:"commitMessage,omitempty"`
	Author        string     `json:"author,omitempty"`
	StartedAt     time.Time  `json:"startedAt"`
	FinishedAt    *time.Time `json:"finishedAt,omitempty"`
	Result        Result     `json:"result"`
}

// Field limits, in bytes. Names follow Kubernetes' longest object names; the rest are
// generous bounds that keep one row from swamping a page.
const (
	maxName          = 253
	maxRevision      = 255
	maxAuthor        = 255
	maxCommitMessage = 64 << 10
)

// Validate reports, wrapped in ErrInvalid, the first rule r breaks. The ID is not checked:
// the store assigns it.
func (r Release) Validate() error {
	checks := []error{
		text("application", r.Application, maxName, true),
		text("environment", r.Environment, maxName, true),
		text("revision", r.Revision, maxRevision, true),
		text("author", r.Author, maxAuthor, false),
		text("commit message", r.CommitMessage, maxCommitMessage, false),
		instant("started at", r.StartedAt),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if !r.Result.Valid() {
		return fmt.Errorf("%w: unknown result %q", ErrInvalid, r.Result)
	}
	if r.Result == ResultPending {
		if r.FinishedAt != nil {
			return fmt.Errorf("%w: a pending release has no finish time", ErrInvalid)
		}
		return nil
	}
	if r.FinishedAt == nil {
		return fmt.Errorf("%w: a %s release needs a finish time", ErrInvalid, r.Result)
	}
	return r.checkFinish(*r.FinishedAt)
}

// Finish records the outcome of a pending release. It returns ErrConflict if r has already
// finished and ErrInvalid if result is not a final result or at precedes the start.
func (r *Release) Finish(result Result, at time.Time) error {
	if result != ResultSucceeded && result != ResultFailed {
		return fmt.Errorf("%w: a release finishes as %s or %s, not %q", ErrInvalid, ResultSucceeded, ResultFailed, result)
	}
	if r.Result != ResultPending {
		return fmt.Errorf("%w: release %d already finished as %s", ErrConflict, r.ID, r.Result)
	}
	if err := r.checkFinish(at); err != nil {
		return err
	}
	r.Result = result
	r.FinishedAt = &at
	return nil
}

func (r Release) checkFinish(at time.Time) error {
	if err := instant("finished at", at); err != nil {
		return err
	}
	if at.Before(r.StartedAt) {
		return fmt.Errorf("%w: finish time %s is before start time %s", ErrInvalid,
			at.Format(time.RFC3339Nano), r.StartedAt.Format(time.RFC3339Nano))
	}
	return nil
}

// Filter selects releases, newest first. Empty fields do not filter.
type Filter struct {
	Application string
	Environment string
	Revision    string
	Result      Result
	// Since keeps releases started at or after it; Until keeps those started before it.
	Since, Until time.Time
	// Limit is the page size: zero means DefaultLimit, and more than MaxLimit means MaxLimit.
	Limit int
	// Cursor is a previous Page's Next, to continue after that page.
	Cursor string
}

// Validate reports, wrapped in ErrInvalid, the first rule f breaks. Cursors are checked by
// the store, which issued them.
func (f Filter) Validate() error {
	if f.Result != "" && !f.Result.Valid() {
		return fmt.Errorf("%w: unknown result %q", ErrInvalid, f.Result)
	}
	if err := optionalInstant("since", f.Since); err != nil {
		return err
	}
	if err := optionalInstant("until", f.Until); err != nil {
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("%w: since must be before until", ErrInvalid)
	}
	return checkLimit(f.Limit)
}

// Page is one page of releases; Next, when set, is the opaque cursor of the following page.
type Page struct {
	Releases []Release `json:"releases"`
	Next     string    `json:"next,omitempty"`
}

func checkLimit(n int) error {
	if n < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalid, n)
	}
	return nil
}

// text checks one string field. Strings must be valid UTF-8 without NUL bytes so that both
// store drivers keep them byte for byte (PostgreSQL rejects both).
func text(field, s string, maxLen int, required bool) error {
	switch {
	case s == "" && required:
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	case len(s) > maxLen:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, field, maxLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, field)
		}
	}
	return nil
}

func optionalInstant(field string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	return instant(field, t)
}

// instant checks a required time; years outside 1-9999 have no RFC 3339 form.
func instant(field string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%w: %s year %d is outside 1-9999", ErrInvalid, field, y)
	}
	return nil
}
