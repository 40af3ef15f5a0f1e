package notify

import (
	"fmt"
	"path"
	"regexp"
	"slices"
)

// The event types delivery notifies about. Other subsystems add theirs under their own prefix.
const (
	EventDeployStarted   = "deploy.started"
	EventDeploySucceeded = "deploy.succeeded"
	EventDeployFailed    = "deploy.failed"
	EventDeployRollback  = "deploy.rollback"
	EventHealthDegraded  = "health.degraded"
	EventHealthRecovered = "health.recovered"
	EventSecretRotated   = "secret.rotated"
	// EventTest is the message `ferry notify test` sends.
	EventTest = "notify.test"

	// The incident hub's events: a new alert, a worse severity, an alert open again after it
	// was closed, expired or acknowledged, and an alert closed.
	EventAlertRaised    = "alert.raised"
	EventAlertEscalated = "alert.escalated"
	EventAlertReopened  = "alert.reopened"
	EventAlertClosed    = "alert.closed"

	// The error tracker's events: an issue seen for the first time, a resolved issue seen
	// again in a release deployed after its fix, and a burst of one issue's events.
	EventErrorNew       = "error.new"
	EventErrorRegressed = "error.regressed"
	EventErrorSpike     = "error.spike"
)

// DefaultEvents are what a subscription without `on` receives: every delivery, incident and
// error event but deploy.started, which is noise on a busy channel (the outcome follows within
// seconds).
var DefaultEvents = []string{EventDeploySucceeded, EventDeployFailed, EventDeployRollback,
	EventHealthDegraded, EventHealthRecovered, EventSecretRotated,
	EventAlertRaised, EventAlertEscalated, EventAlertReopened, EventAlertClosed,
	EventErrorNew, EventErrorRegressed, EventErrorSpike}

// eventPattern is the grammar of `on` entries: an event type, or one with * for a word.
var eventPattern = regexp.MustCompile(`^(\*|[a-z*]+(\.[a-z_*]+)+)$`)

// Subscription sends the events it matches to its channels. Empty filters match anything;
// filters take shell patterns (path.Match), so `environments: [dev-*]` matches every
// developer environment.
type Subscription struct {
	Channels []string `yaml:"channels" json:"channels"`
	// On lists event types or patterns (deploy.*, *); empty means DefaultEvents.
	On           []string `yaml:"on" json:"on,omitempty"`
	Environments []string `yaml:"environments" json:"environments,omitempty"`
	Namespaces   []string `yaml:"namespaces" json:"namespaces,omitempty"`
	Applications []string `yaml:"applications" json:"applications,omitempty"`
}

// Validate checks the subscription's patterns, and that every channel it names is in known.
func (s Subscription) Validate(known func(string) bool) error {
	if len(s.Channels) == 0 {
		return fmt.Errorf("%w: a subscription names no channel", ErrInvalid)
	}
	for _, c := range s.Channels {
		if !known(c) {
			return fmt.Errorf("%w: subscription names channel %q, which is not configured", ErrInvalid, c)
		}
	}
	if err := validateOn(s.On); err != nil {
		return err
	}
	for _, list := range [][]string{s.Environments, s.Namespaces, s.Applications} {
		for _, p := range list {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("%w: pattern %q: %w", ErrInvalid, p, err)
			}
		}
	}
	return nil
}

func validateOn(on []string) error {
	for _, p := range on {
		if !eventPattern.MatchString(p) {
			return fmt.Errorf("%w: %q is not an event type or pattern such as deploy.failed, deploy.* or *", ErrInvalid, p)
		}
	}
	return nil
}

// matches reports whether e passes the subscription's filters.
func (s Subscription) matches(e Event) bool {
	return matchOn(s.On, e.Type) &&
		matchAny(s.Environments, e.Environment) &&
		matchAny(s.Namespaces, e.Namespace) &&
		matchAny(s.Applications, e.Application)
}

func matchOn(on []string, typ string) bool {
	if len(on) == 0 {
		return slices.Contains(DefaultEvents, typ)
	}
	return matchAny(on, typ)
}

func matchAny(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// AppSubscription is one entry of an Application's spec.notify: a channel and the events it
// wants from that Application.
type AppSubscription struct {
	Channel string
	On      []string
}

// Router decides which channels an event goes to: the global subscriptions of Ferry's
// configuration plus the Application's own.
type Router struct {
	channels []string
	subs     []Subscription
}

// NewRouter returns a router over the configured channel names and subscriptions, which it
// validates.
func NewRouter(channels []string, subs []Subscription) (*Router, error) {
	known := func(c string) bool { return slices.Contains(channels, c) }
	for i, s := range subs {
		if err := s.Validate(known); err != nil {
			return nil, fmt.Errorf("subscription %d: %w", i+1, err)
		}
	}
	return &Router{channels: slices.Clone(channels), subs: slices.Clone(subs)}, nil
}

// Known reports whether a channel of that name is configured.
func (r *Router) Known(channel string) bool { return slices.Contains(r.channels, channel) }

// Route returns one notification per channel e goes to, in configuration order, and the
// channels of app that are not configured (to report on the Application). The notifications
// carry no Key: the store keys them by the event that causes them.
func (r *Router) Route(e Event, app []AppSubscription) (notes []Notification, unknown []string) {
	var chosen []string
	add := func(c string) {
		if !slices.Contains(chosen, c) {
			chosen = append(chosen, c)
		}
	}
	for _, s := range r.subs {
		if s.matches(e) {
			for _, c := range s.Channels {
				add(c)
			}
		}
	}
	for _, s := range app {
		if !r.Known(s.Channel) {
			if !slices.Contains(unknown, s.Channel) {
				unknown = append(unknown, s.Channel)
			}
			continue
		}
		if validateOn(s.On) == nil && matchOn(s.On, e.Type) {
			add(s.Channel)
		}
	}
	for _, c := range chosen {
		notes = append(notes, Notification{Channel: c, Event: e})
	}
	return notes, unknown
}
