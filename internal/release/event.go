package release

import (
	"fmt"
	"regexp"
	"time"
)

// EventType names what happened on a release's timeline, as dotted lowercase words: the
// subsystem first, then the happening ("deploy.started", "alert.firing").
type EventType string

// The event types the delivery engine records. Other subsystems add their own types under
// their own prefix; any type matching the grammar is accepted.
const (
	EventDeployStarted   EventType = "deploy.started"
	EventDeploySucceeded EventType = "deploy.succeeded"
	EventDeployFailed    EventType = "deploy.failed"
	// EventDeployDriftCorrected records that self-heal re-applied objects changed outside git.
	EventDeployDriftCorrected EventType = "deploy.drift_corrected"
	// EventSecretRotated records that a Vault secret the release references got a new version
	// and the workloads that use it were rolled.
	EventSecretRotated EventType = "secret.rotated"
	// EventDeployRollback marks a release that deploys an earlier revision by a rollback.
	EventDeployRollback EventType = "deploy.rollback"
	// EventHealthDegraded and EventHealthRecovered record an Application at rest turning
	// Degraded, and Healthy again.
	EventHealthDegraded  EventType = "health.degraded"
	EventHealthRecovered EventType = "health.recovered"
)

const maxEventType = 64

var eventTypeGrammar = regexp.MustCompile(`^[a-z]+(\.[a-z_]+)+$`)

// Valid reports whether t follows the event type grammar: at least two dot-separated
// lowercase words, the first of letters only, the rest of letters and underscores.
func (t EventType) Valid() bool {
	return len(t) <= maxEventType && eventTypeGrammar.MatchString(string(t))
}

// Event is one entry on a release's timeline.
type Event struct {
	ID         int64             `json:"id"`
	ReleaseID  int64             `json:"releaseId"`
	Type       EventType         `json:"type"`
	Time       time.Time         `json:"time"`
	Summary    string            `json:"summary"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Key, when set, makes the event idempotent: a release records one event per key, so a
	// reconcile that repeats (a retry, a restart, a second replica) does not record it twice.
	Key string `json:"key,omitempty"`
}

// Event limits, in bytes and entries: an event is a line on a timeline, not a log dump.
const (
	maxSummary        = 4 << 10
	maxAttributes     = 100
	maxAttributeKey   = 128
	maxAttributeValue = 4 << 10
	maxKey            = 255
)

// Validate reports, wrapped in ErrInvalid, the first rule e breaks. The ID is not checked:
// the store assigns it.
func (e Event) Validate() error {
	if e.ReleaseID <= 0 {
		return fmt.Errorf("%w: event needs a release ID", ErrInvalid)
	}
	if !e.Type.Valid() {
		return fmt.Errorf("%w: event type %q does not match %s", ErrInvalid, e.Type, eventTypeGrammar)
	}
	if err := instant("event time", e.Time); err != nil {
		return err
	}
	if err := text("key", e.Key, maxKey, false); err != nil {
		return err
	}
	if err := text("summary", e.Summary, maxSummary, true); err != nil {
		return err
	}
	if len(e.Attributes) > maxAttributes {
		return fmt.Errorf("%w: more than %d attributes", ErrInvalid, maxAttributes)
	}
	for k, v := range e.Attributes {
		if err := text("attribute name", k, maxAttributeKey, true); err != nil {
			return err
		}
		if err := text("attribute "+k, v, maxAttributeValue, false); err != nil {
			return err
		}
	}
	return nil
}

// TimelineFilter selects a release's events, oldest first.
type TimelineFilter struct {
	// Types keeps only events of these types; empty keeps all.
	Types []EventType
	// Limit is the page size: zero means DefaultLimit, and more than MaxLimit means MaxLimit.
	Limit int
	// Cursor is a previous Timeline's Next, to continue after that page.
	Cursor string
}

// Validate reports, wrapped in ErrInvalid, the first rule f breaks.
func (f TimelineFilter) Validate() error {
	for _, t := range f.Types {
		if !t.Valid() {
			return fmt.Errorf("%w: event type %q does not match %s", ErrInvalid, t, eventTypeGrammar)
		}
	}
	return checkLimit(f.Limit)
}

// Timeline is one page of a release's events; Next, when set, is the opaque cursor of the
// following page.
type Timeline struct {
	Events []Event `json:"events"`
	Next   string  `json:"next,omitempty"`
}
