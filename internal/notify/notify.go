// Package notify tells people what happened: it routes timeline events to the chat channels
// subscribed to them, renders each with the channel's templates, and delivers it through a
// durable outbox, once per event per channel.
//
// The package holds the domain (events, messages, subscriptions, templates, the outbox worker);
// each chat service is a receiver in its own subpackage (rocketchat, telegram, slack, webhook)
// that turns a Message into that service's HTTP request.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Event is what a notification is about: one entry of a release's timeline (a deploy, a failed
// sync, a rotated secret) or, from later subsystems, an alert or an error issue, with what the
// templates need to describe it. It is stored in the outbox as JSON, so a notification renders
// the same after a restart.
type Event struct {
	// Type is the timeline event type, such as deploy.succeeded or health.degraded.
	Type string `json:"type"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Summary is one line saying what happened, as the timeline shows it.
	Summary string `json:"summary"`

	// Application and Namespace name the Application; Environment is its release environment.
	Application string `json:"application,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Environment string `json:"environment,omitempty"`

	// ReleaseID is the release the event belongs to; zero for events outside a release.
	ReleaseID     int64  `json:"releaseId,omitempty"`
	Revision      string `json:"revision,omitempty"`
	CommitMessage string `json:"commitMessage,omitempty"`
	Author        string `json:"author,omitempty"`
	// CommitURL links the revision in the git host's web UI, when it can be derived.
	CommitURL string `json:"commitUrl,omitempty"`
	// URL links the event's page in Ferry's panel.
	URL string `json:"url,omitempty"`

	// Changes counts what a sync did to the cluster; nil when it did not apply anything.
	Changes *Changes `json:"changes,omitempty"`
	// Duration is how long the sync took, from start to healthy or failed.
	Duration time.Duration `json:"duration,omitempty"`
	// Object and Reason name what failed and why: the object that failed the dry-run or stayed
	// unhealthy, and the API server's or kstatus's message.
	Object string `json:"object,omitempty"`
	Reason string `json:"reason,omitempty"`

	// Attributes carry what other subsystems add (alert severity, issue counts).
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Changes counts what a sync did to the cluster's objects.
type Changes struct {
	Created    int `json:"created"`
	Configured int `json:"configured"`
	Unchanged  int `json:"unchanged"`
	Pruned     int `json:"pruned"`
}

// Severity of an event, which receivers show as a colour.
type Severity string

// The severities, from best to worst.
const (
	SeverityGood    Severity = "good"
	SeverityInfo    Severity = "info"
	SeverityWarning Severity = "warning"
	SeverityDanger  Severity = "danger"
)

// Color is the severity as an RGB hex colour, for attachments.
func (s Severity) Color() string {
	switch s {
	case SeverityGood:
		return "#2eb886"
	case SeverityWarning:
		return "#daa038"
	case SeverityDanger:
		return "#a30200"
	}
	return "#439fe0"
}

// Field is one labelled value of a message, shown as a table row by services that have them.
type Field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	// Short fields may be laid out side by side.
	Short bool `json:"short,omitempty"`
}

// Message is one rendered notification, ready for a receiver. Title and Text are in the
// receiver's markup (HTML for Telegram, Markdown for Rocket.Chat, mrkdwn for Slack, plain for
// the webhook): the templates that produced them escaped what needed escaping.
type Message struct {
	// ID is the outbox row: stable across retries, so receivers can send it as an idempotency
	// key where the service takes one.
	ID int64
	// Channel is the name of the channel in Ferry's configuration.
	Channel  string
	Title    string
	Text     string
	Severity Severity
	// Link is the panel page the message is about; Telegram links it when it trims a message.
	Link   string
	Fields []Field
	// Event is what was rendered, for receivers that send structured data (the webhook).
	Event Event
}

// Receiver delivers messages to one chat service destination.
type Receiver interface {
	// Send delivers m once. It returns nil only when the service accepted the message. Any
	// error is returned as a *SendError, whose fields say whether and when to retry. Errors
	// never hold the token or the webhook URL.
	Send(ctx context.Context, m Message) error
}

// SendError is a failed delivery, classified for the outbox's retry policy.
type SendError struct {
	// Status is the HTTP status the service answered; zero when no answer came.
	Status int
	// Permanent errors are not retried: the request is wrong (bad chat ID, revoked token).
	Permanent bool
	// RetryAfter, when set, is how long the service asked to wait (429 retry_after,
	// Retry-After, X-RateLimit-Reset).
	RetryAfter time.Duration
	// Err says what went wrong, redacted.
	Err error
}

func (e *SendError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("HTTP %d: %v", e.Status, e.Err)
	}
	return e.Err.Error()
}

func (e *SendError) Unwrap() error { return e.Err }

// RateLimited reports whether the service answered 429.
func (e *SendError) RateLimited() bool { return e.Status == http.StatusTooManyRequests }

// Classify turns any error from a Send into a *SendError: a *SendError is returned as is,
// anything else (a bug in a receiver) is retried.
func Classify(err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	return &SendError{Err: err}
}

// StatusError builds the SendError for an HTTP answer that is not a success: 429, 408, 409
// and 5xx are retried; other 4xx, and redirects (the URL is wrong), are permanent. retryAfter is what the service asked for, if
// anything. detail is the service's own error text, already free of secrets.
func StatusError(status int, retryAfter time.Duration, detail string) *SendError {
	permanent := status >= 300 && status < 500 && status != http.StatusTooManyRequests &&
		status != http.StatusRequestTimeout && status != http.StatusConflict
	if detail == "" {
		detail = http.StatusText(status)
	}
	return &SendError{Status: status, Permanent: permanent, RetryAfter: retryAfter, Err: errors.New(detail)}
}

// ParseRetryAfter reads an HTTP Retry-After header: delay-seconds or an HTTP date. It
// returns zero when the header is absent or unreadable.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
