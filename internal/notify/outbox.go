package notify

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// channelName is the grammar of channel names: a DNS label, so names read the same in
// config, annotations, URLs and metrics.
var channelName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ErrNotFound reports a notification or channel that does not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalid reports input that breaks a rule; the wrapping error says which.
var ErrInvalid = errors.New("invalid input")

// ErrLeaseLost reports that a worker tried to finish a notification another worker now holds,
// because its lease ran out. The other worker's outcome stands.
var ErrLeaseLost = errors.New("lease lost")

// Status is where a notification is in the outbox.
type Status string

// The statuses of a notification. It starts pending and ends sent or failed.
const (
	StatusPending Status = "pending"
	StatusSent    Status = "sent"
	StatusFailed  Status = "failed"
)

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusSent, StatusFailed:
		return true
	}
	return false
}

// Notification is one message for one channel in the outbox.
type Notification struct {
	ID int64 `json:"id"`
	// Channel is the name of the channel in Ferry's configuration.
	Channel string `json:"channel"`
	// Key de-duplicates: the outbox holds one notification per channel and key, so the same
	// event routed twice (a reconcile repeated, a second replica, a restart) is sent once.
	Key   string `json:"key"`
	Event Event  `json:"event"`

	Status Status `json:"status"`
	// Attempts counts the failed deliveries, rate-limited ones excepted.
	Attempts int `json:"attempts"`
	// LastError is the latest failure, redacted by the receiver.
	LastError   string     `json:"lastError,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	NextAttempt time.Time  `json:"nextAttemptAt"`
	SentAt      *time.Time `json:"sentAt,omitempty"`
}

// Limits on what the outbox stores.
const (
	maxChannel = 63
	maxKey     = 512
	// MaxError is the longest LastError kept, in bytes.
	MaxError = 1 << 10
)

// Validate reports, wrapped in ErrInvalid, the first rule n breaks as a new notification.
func (n Notification) Validate() error {
	switch {
	case !channelName.MatchString(n.Channel) || len(n.Channel) > maxChannel:
		return fmt.Errorf("%w: channel name %q must be 1-%d lowercase letters, digits and dashes", ErrInvalid, n.Channel, maxChannel)
	case n.Key == "" || len(n.Key) > maxKey:
		return fmt.Errorf("%w: notification key must be 1-%d bytes", ErrInvalid, maxKey)
	case n.Event.Type == "":
		return fmt.Errorf("%w: notification has no event type", ErrInvalid)
	}
	return nil
}

// Attempt is the outcome of one delivery, for the outbox to record.
type Attempt struct {
	// Status is sent, failed (given up), or pending (retry at Next).
	Status Status
	// Next is when to try again, for a pending outcome.
	Next time.Time
	// Error is why the attempt failed.
	Error string
	// At is when the attempt ended.
	At time.Time
	// RateLimited attempts, answered 429, do not count against the retry budget: the service
	// is up and asked to wait, and waiting loses nothing.
	RateLimited bool
}

// OutboxState is how full the outbox is, for the depth metric and the worker's sleep.
type OutboxState struct {
	// Pending counts notifications not yet sent or failed.
	Pending int
	// NextDue is the earliest next attempt of a pending notification; zero when none.
	NextDue time.Time
}

// Filter selects notifications, newest first. Empty fields do not filter.
type Filter struct {
	Status    Status
	Channel   string
	ReleaseID int64
	// Limit is the page size: zero means 50, more than 500 means 500.
	Limit int
	// Cursor is a previous Page's Next.
	Cursor string
}

// Validate reports, wrapped in ErrInvalid, the first rule f breaks.
func (f Filter) Validate() error {
	if f.Status != "" && !f.Status.Valid() {
		return fmt.Errorf("%w: unknown status %q; want pending, sent or failed", ErrInvalid, f.Status)
	}
	if f.Limit < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalid, f.Limit)
	}
	return nil
}

// Page is one page of notifications; Next, when set, continues after it.
type Page struct {
	Notifications []Notification `json:"notifications"`
	Next          string         `json:"next,omitempty"`
}
