package incident

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// BlackoutStatus says where now lies relative to a blackout's window, as Alerta names it.
type BlackoutStatus string

// The statuses of a blackout.
const (
	BlackoutPending BlackoutStatus = "pending"
	BlackoutActive  BlackoutStatus = "active"
	BlackoutExpired BlackoutStatus = "expired"
)

// DefaultBlackoutDuration is the length, in seconds, of a blackout that gives neither an end
// nor a duration (Alerta's BLACKOUT_DURATION).
const DefaultBlackoutDuration = 3600

// Blackout is a maintenance window, with Alerta's JSON field names: while it is active, the
// alerts it covers are stored with status blackout and notify nobody. It covers an alert of
// its environment that matches every other field it sets (see Covers).
//
// Status and Remaining depend on the time they are looked at: At fills them in. The store
// keeps and returns the rest.
type Blackout struct {
	ID string `json:"id"`
	// Priority is Alerta's: which kind of field the blackout narrows by, from 1 (the whole
	// environment) to 8 (an origin). It orders nothing in Ferry and is kept for clients.
	Priority    int       `json:"priority"`
	Environment string    `json:"environment"`
	Service     []string  `json:"service"`
	Resource    string    `json:"resource"`
	Event       string    `json:"event"`
	Group       string    `json:"group"`
	Tags        []string  `json:"tags"`
	Origin      string    `json:"origin"`
	Customer    string    `json:"customer,omitempty"`
	StartTime   time.Time `json:"startTime"`
	EndTime     time.Time `json:"endTime"`
	// Duration is EndTime - StartTime, in seconds.
	Duration int `json:"duration"`
	// Status is StatusAt the time At was given.
	Status BlackoutStatus `json:"status"`
	// Remaining is RemainingAt the time At was given.
	Remaining  int       `json:"remaining"`
	User       string    `json:"user"`
	CreateTime time.Time `json:"createTime"`
	Text       string    `json:"text"`
}

// StatusAt is the blackout's status at now: pending before StartTime, active from StartTime
// up to EndTime, expired from EndTime on.
func (b Blackout) StatusAt(now time.Time) BlackoutStatus {
	switch {
	case now.Before(b.StartTime):
		return BlackoutPending
	case now.Before(b.EndTime):
		return BlackoutActive
	}
	return BlackoutExpired
}

// RemainingAt is how many seconds of the blackout are left at now: all of its Duration
// while pending, down to zero once expired, as Alerta counts them.
func (b Blackout) RemainingAt(now time.Time) int {
	switch b.StatusAt(now) {
	case BlackoutPending:
		return b.Duration
	case BlackoutActive:
		return int(b.EndTime.Sub(now) / time.Second)
	}
	return 0
}

// At returns the blackout as it looks at now, with Status and Remaining filled in.
func (b Blackout) At(now time.Time) Blackout {
	b.Status = b.StatusAt(now)
	b.Remaining = b.RemainingAt(now)
	return b
}

// Covers reports whether the blackout suppresses a at now, as Alerta's is_blackout_period
// decides: the blackout is active at now, has a's environment, and every other field it sets
// matches a's — resource, event, group and origin equal; every service it lists among a's
// services and every tag it lists among a's tags; a customer, if it names one, equal to a's.
// A blackout that sets nothing but its environment covers the whole environment.
//
// Alerta compares the window with the alert's createTime, which the sender's clock sets;
// Ferry compares it with now, the time of receipt, so that a sender with a wrong clock is
// still covered.
func (b Blackout) Covers(a Alert, now time.Time) bool {
	if b.StatusAt(now) != BlackoutActive || b.Environment != a.Environment {
		return false
	}
	for _, f := range []struct{ want, got string }{
		{b.Resource, a.Resource}, {b.Event, a.Event}, {b.Group, a.Group}, {b.Origin, a.Origin}, {b.Customer, a.Customer},
	} {
		if f.want != "" && f.want != f.got {
			return false
		}
	}
	return subset(b.Service, a.Service) && subset(b.Tags, a.Tags)
}

// subset reports whether every entry of want is in have.
func subset(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// AnyCovers reports whether one of blackouts covers a at now: the Rules.Blackout check over
// a list of blackouts, such as the store's ActiveBlackouts.
func AnyCovers(blackouts []Blackout, a Alert, now time.Time) bool {
	return slices.ContainsFunc(blackouts, func(b Blackout) bool { return b.Covers(a, now) })
}

// AlertaPriority is Alerta's priority of a blackout, from the fields it sets: 1 for the whole
// environment, 2 a resource, 3 services, 4 an event, 5 a group, 6 a resource and an event,
// 7 tags, 8 an origin (checked in that order; origin overrides).
func (b Blackout) AlertaPriority() int {
	p := 1
	switch {
	case b.Resource != "" && b.Event == "":
		p = 2
	case len(b.Service) > 0:
		p = 3
	case b.Event != "" && b.Resource == "":
		p = 4
	case b.Group != "":
		p = 5
	case b.Resource != "" && b.Event != "":
		p = 6
	case len(b.Tags) > 0:
		p = 7
	}
	if b.Origin != "" {
		p = 8
	}
	return p
}

// BlackoutOptions are the defaults DecodeBlackout fills in. The zero value is Alerta's.
type BlackoutOptions struct {
	// DefaultDuration is the length, in seconds, of a blackout that gives neither endTime
	// nor duration; zero means DefaultBlackoutDuration.
	DefaultDuration int
}

// DecodeBlackout reads the body of POST /api/blackout, received at now: one object with
// Alerta's field names. environment is required; service, resource, event, group, tags,
// origin, customer, user and text narrow or describe it. The window starts at startTime,
// or now; it ends at endTime when given (duration is then ignored, as in Alerta), else
// after duration seconds, else (no duration, or zero) after the default duration. id, priority, status and the
// rest of what the server computes are ignored, as are unknown fields. The result has passed
// Validate. Every error wraps ErrInvalid; errors about one field are *FieldError naming it,
// joined when there are several.
func DecodeBlackout(body []byte, now time.Time, o BlackoutOptions) (Blackout, error) {
	d, err := decodeObject(body)
	if err != nil {
		return Blackout{}, err
	}
	now = now.UTC()
	b := Blackout{CreateTime: now}
	var duration *int
	d.get("environment", &b.Environment)
	d.get("service", &b.Service)
	d.get("resource", &b.Resource)
	d.get("event", &b.Event)
	d.get("group", &b.Group)
	d.get("tags", &b.Tags)
	d.get("origin", &b.Origin)
	d.getCustomer(&b.Customer)
	d.get("user", &b.User)
	d.get("text", &b.Text)
	d.get("duration", &duration)
	b.StartTime = d.getTime("startTime", now).UTC()
	hasEnd := d.has("endTime")
	b.EndTime = d.getTime("endTime", time.Time{}).UTC()
	switch {
	case hasEnd:
		if !b.EndTime.IsZero() && !b.EndTime.After(b.StartTime) {
			d.fail("endTime", "must be after startTime")
		}
		b.Duration = int(b.EndTime.Sub(b.StartTime) / time.Second)
	case duration != nil && (*duration < 0 || *duration > MaxTimeout):
		d.fail("duration", fmt.Sprintf("must be between 1 and %d seconds", MaxTimeout))
	default:
		// A zero duration is the default, as in Alerta.
		b.Duration = cmp.Or(o.DefaultDuration, DefaultBlackoutDuration)
		if duration != nil && *duration != 0 {
			b.Duration = *duration
		}
		b.EndTime = b.StartTime.Add(time.Duration(b.Duration) * time.Second)
	}
	if b.Service == nil {
		b.Service = []string{}
	}
	if b.Tags == nil {
		b.Tags = []string{}
	}
	if err := errors.Join(d.errs...); err != nil {
		return Blackout{}, err
	}
	b.Priority = b.AlertaPriority()
	if err := b.Validate(); err != nil {
		return Blackout{}, err
	}
	return b, nil
}

// Validate checks a blackout before it is stored: environment is required; the window ends
// after it starts and lasts at most MaxTimeout seconds, and Duration says how long it is;
// every string is valid UTF-8 without NUL bytes and within the bounds an alert's fields
// have. It returns every *FieldError found, joined, or nil.
func (b *Blackout) Validate() error {
	var v fieldChecker
	v.str("environment", b.Environment, MaxNameLen, true)
	v.list("service", b.Service)
	v.str("resource", b.Resource, MaxNameLen, false)
	v.str("event", b.Event, MaxNameLen, false)
	v.str("group", b.Group, MaxNameLen, false)
	v.list("tags", b.Tags)
	v.str("origin", b.Origin, MaxNameLen, false)
	v.str("customer", b.Customer, MaxNameLen, false)
	v.str("user", b.User, MaxNameLen, false)
	v.str("text", b.Text, MaxTextLen, false)
	switch {
	case b.StartTime.IsZero():
		v.add("startTime", "required")
	case !b.EndTime.After(b.StartTime):
		v.add("endTime", "must be after startTime")
	case b.EndTime.Sub(b.StartTime) > MaxTimeout*time.Second:
		v.add("endTime", "must be at most %d seconds after startTime", MaxTimeout)
	case b.Duration != int(b.EndTime.Sub(b.StartTime)/time.Second):
		v.add("duration", "must be the seconds from startTime to endTime")
	}
	return errors.Join(v.errs...)
}
