package incident

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// HeartbeatStatus says whether a heartbeat's sender is alive, as Alerta names it.
type HeartbeatStatus string

// The statuses of a heartbeat.
const (
	// HeartbeatOK is a heartbeat received within its timeout, without much delay.
	HeartbeatOK HeartbeatStatus = "ok"
	// HeartbeatExpired is a heartbeat whose sender has been quiet for longer than its timeout.
	HeartbeatExpired HeartbeatStatus = "expired"
	// HeartbeatSlow is a heartbeat within its timeout that took longer than its maxLatency
	// to arrive.
	HeartbeatSlow HeartbeatStatus = "slow"
)

// Valid reports whether s is one of the heartbeat statuses.
func (s HeartbeatStatus) Valid() bool {
	return s == HeartbeatOK || s == HeartbeatExpired || s == HeartbeatSlow
}

// Alerta's heartbeat defaults (HEARTBEAT_TIMEOUT, HEARTBEAT_MAX_LATENCY).
const (
	// DefaultHeartbeatTimeout is the timeout, in seconds, of a heartbeat that gives none.
	DefaultHeartbeatTimeout = 86400
	// DefaultHeartbeatMaxLatency is how long, in milliseconds, a heartbeat may take from its
	// createTime to its receipt before it is slow.
	DefaultHeartbeatMaxLatency = 2000
)

// The events of the alerts heartbeats raise, as Alerta's `alerta heartbeats --alert` names
// them. Each alert lists all three in its correlate, so that Receive turns the one open
// alert of an origin from one into the other.
const (
	EventHeartbeatFail = "HeartbeatFail"
	EventHeartbeatSlow = "HeartbeatSlow"
	EventHeartbeatOK   = "HeartbeatOK"
)

// Fields of the alerts heartbeats raise.
const (
	// HeartbeatAlertGroup is the group of a heartbeat alert.
	HeartbeatAlertGroup = "System"
	// HeartbeatAlertType is the type of a heartbeat alert.
	HeartbeatAlertType = "heartbeatAlert"
	// HeartbeatAlertOrigin is the origin of a heartbeat alert: Ferry raises it, not the sender.
	HeartbeatAlertOrigin = "ferry/heartbeat"
	// defaultHeartbeatEnvironment is Alerta's DEFAULT_ENVIRONMENT, when the caller gives none.
	defaultHeartbeatEnvironment = "Production"
	// heartbeatType is the type of every heartbeat.
	heartbeatType = "Heartbeat"
)

// Heartbeat is the latest sign of life of one sender, an origin (per customer), with
// Alerta's JSON field names. A sender posts one every so often; when none arrives within
// Timeout seconds of the last, the heartbeat has expired and Ferry raises an alert.
//
// Latency, Since and Status depend on the time they are looked at: At fills them in. The
// store keeps and returns the rest.
type Heartbeat struct {
	ID         string         `json:"id"`
	Origin     string         `json:"origin"`
	Tags       []string       `json:"tags"`
	Attributes map[string]any `json:"attributes"`
	EventType  string         `json:"type"`
	// CreateTime is when the sender made the heartbeat, by its clock.
	CreateTime time.Time `json:"createTime"`
	// Timeout is how long, in seconds, the sender may stay quiet after ReceiveTime.
	Timeout int `json:"timeout"`
	// MaxLatency is how long, in milliseconds, the heartbeat may take from CreateTime to
	// ReceiveTime before it is slow; zero means DefaultHeartbeatMaxLatency.
	MaxLatency  int       `json:"maxLatency"`
	ReceiveTime time.Time `json:"receiveTime"`
	Customer    string    `json:"customer,omitempty"`

	// Latency is ReceiveTime - CreateTime, in milliseconds.
	Latency int `json:"latency"`
	// Since is how many whole seconds passed from ReceiveTime to the time At was given.
	Since int `json:"since"`
	// Status is StatusAt the time At was given.
	Status HeartbeatStatus `json:"status"`

	// Alerted is Ferry's: an alert was raised for this heartbeat's expiry and not yet
	// cleared. The store keeps it; a received heartbeat resets it.
	Alerted bool `json:"-"`
}

// ExpiresAt is when the heartbeat expires unless another arrives first.
func (h Heartbeat) ExpiresAt() time.Time {
	return h.ReceiveTime.Add(time.Duration(h.Timeout) * time.Second)
}

// latency is ReceiveTime - CreateTime in milliseconds.
func (h Heartbeat) latency() int {
	return int(h.ReceiveTime.Sub(h.CreateTime).Milliseconds())
}

// StatusAt is the heartbeat's status at now: expired once now is past ExpiresAt, else slow
// when its latency passed its MaxLatency, else ok. As in Alerta, expiry wins over slowness.
func (h Heartbeat) StatusAt(now time.Time) HeartbeatStatus {
	maxLatency := h.MaxLatency
	if maxLatency <= 0 {
		maxLatency = DefaultHeartbeatMaxLatency
	}
	switch {
	case now.After(h.ExpiresAt()):
		return HeartbeatExpired
	case h.latency() > maxLatency:
		return HeartbeatSlow
	}
	return HeartbeatOK
}

// At returns the heartbeat as it looks at now, with Latency, Since and Status filled in.
func (h Heartbeat) At(now time.Time) Heartbeat {
	h.Latency = h.latency()
	h.Since = max(0, int(now.Sub(h.ReceiveTime)/time.Second))
	h.Status = h.StatusAt(now)
	return h
}

// HeartbeatOptions are the defaults DecodeHeartbeat fills in, as Alerta's server settings do.
// The zero value is Alerta's defaults.
type HeartbeatOptions struct {
	// DefaultTimeout is the timeout, in seconds, of a heartbeat that gives none (or zero);
	// zero means DefaultHeartbeatTimeout.
	DefaultTimeout int
	// MaxLatency is the slowness threshold, in milliseconds, of every heartbeat; zero means
	// DefaultHeartbeatMaxLatency.
	MaxLatency int
}

// DecodeHeartbeat reads the body of POST /api/heartbeat, received at now: one object with
// Alerta's field names, of which origin is required and tags, attributes, createTime,
// timeout and customer are read. The rest (id, type, receiveTime, ...) is the server's and
// ignored, as are unknown fields. A missing createTime is now; a missing or zero timeout is
// the default (Alerta's older servers read zero so too; a heartbeat that expires at once
// would be of no use). The result has passed Validate. Every error wraps ErrInvalid; errors
// about one field are *FieldError naming it, joined when there are several.
func DecodeHeartbeat(body []byte, now time.Time, o HeartbeatOptions) (Heartbeat, error) {
	d, err := decodeObject(body)
	if err != nil {
		return Heartbeat{}, err
	}
	h := Heartbeat{EventType: heartbeatType, ReceiveTime: now.UTC(), MaxLatency: o.MaxLatency}
	var timeout *int
	d.get("origin", &h.Origin)
	d.get("tags", &h.Tags)
	d.getAttributes("attributes", &h.Attributes)
	h.CreateTime = d.getTime("createTime", now).UTC()
	d.get("timeout", &timeout)
	d.getCustomer(&h.Customer)
	h.Timeout = cmp.Or(o.DefaultTimeout, DefaultHeartbeatTimeout)
	if timeout != nil && *timeout != 0 {
		h.Timeout = *timeout
	}
	if h.MaxLatency <= 0 {
		h.MaxLatency = DefaultHeartbeatMaxLatency
	}
	if h.Tags == nil {
		h.Tags = []string{}
	}
	if h.Attributes == nil {
		h.Attributes = map[string]any{}
	}
	if err := errors.Join(d.errs...); err != nil {
		return Heartbeat{}, err
	}
	if err := h.Validate(); err != nil {
		return Heartbeat{}, err
	}
	return h, nil
}

// Validate checks a heartbeat before it is stored: origin is required; timeout is between 1
// and MaxTimeout seconds; maxLatency is not negative; every string is valid UTF-8 without
// NUL bytes and within the bounds an alert's fields have. It returns every *FieldError
// found, joined, or nil.
func (h *Heartbeat) Validate() error {
	var v fieldChecker
	v.str("origin", h.Origin, MaxNameLen, true)
	v.list("tags", h.Tags)
	if err := checkAttributes(h.Attributes); err != nil {
		v.errs = append(v.errs, err)
	}
	v.str("type", h.EventType, MaxNameLen, false)
	v.str("customer", h.Customer, MaxNameLen, false)
	if h.Timeout < 1 || h.Timeout > MaxTimeout {
		v.add("timeout", "must be between 1 and %d seconds", MaxTimeout)
	}
	if h.MaxLatency < 0 {
		v.add("maxLatency", "must not be negative")
	}
	if h.ReceiveTime.IsZero() {
		v.add("receiveTime", "required")
	}
	return errors.Join(v.errs...)
}

// FailAlert is the alert to raise when h has expired at now, in Alerta's convention:
// resource the origin, event HeartbeatFail, severity major, group System, text "Heartbeat
// not received in N seconds", with the heartbeat's tags, attributes and customer. Its
// environment is the heartbeat's (see HeartbeatEnvironment), else defaultEnvironment, else
// Production; its service is the attribute "service", when it holds a string or strings. It
// never times out: it stays open until the sender comes back and ClearAlert closes it.
//
// The housekeeping loop raises it for each of the store's ExpiredHeartbeats, then marks the
// heartbeat alerted.
func (h Heartbeat) FailAlert(now time.Time, defaultEnvironment string) Alert {
	a := h.alert(now, defaultEnvironment)
	a.Event, a.Severity = EventHeartbeatFail, SeverityMajor
	a.Value = h.quiet(now).String()
	a.Text = fmt.Sprintf("Heartbeat not received in %d seconds", h.Timeout)
	return a
}

// ClearAlert is the alert that closes h's FailAlert when a heartbeat from the same sender
// arrives at now: event HeartbeatOK, severity normal, with the same identity, so that
// Receive correlates it with the open HeartbeatFail and closes that. h is the heartbeat as
// it was when the FailAlert was raised (the store's previous state), so that a heartbeat that
// comes back with another environment attribute still clears the alert it raised.
func (h Heartbeat) ClearAlert(now time.Time, defaultEnvironment string) Alert {
	a := h.alert(now, defaultEnvironment)
	a.Event, a.Severity = EventHeartbeatOK, SeverityNormal
	a.Value = h.quiet(now).String()
	a.Text = fmt.Sprintf("Heartbeat received again after %s", h.quiet(now))
	return a
}

// quiet is how long the sender has been quiet at now, in whole seconds.
func (h Heartbeat) quiet(now time.Time) time.Duration {
	return max(0, now.Sub(h.ReceiveTime)).Truncate(time.Second)
}

func (h Heartbeat) alert(now time.Time, defaultEnvironment string) Alert {
	env := HeartbeatEnvironment(h)
	if env == "" {
		env = cmp.Or(strings.TrimSpace(defaultEnvironment), defaultHeartbeatEnvironment)
	}
	return Alert{
		Resource:    h.Origin,
		Environment: env,
		Correlate:   []string{EventHeartbeatFail, EventHeartbeatSlow, EventHeartbeatOK},
		Service:     stringsAttribute(h.Attributes["service"]),
		Group:       HeartbeatAlertGroup,
		Tags:        slices.Clone(h.Tags),
		Attributes:  maps.Clone(h.Attributes),
		Origin:      HeartbeatAlertOrigin,
		EventType:   HeartbeatAlertType,
		CreateTime:  now.UTC(),
		Customer:    h.Customer,
	}
}

// HeartbeatEnvironment is the environment a heartbeat names: its attribute "environment",
// else its first tag "environment=NAME" or "environment:NAME"; "" when it names none.
func HeartbeatEnvironment(h Heartbeat) string {
	if s, ok := h.Attributes["environment"].(string); ok && usableName(s) {
		return s
	}
	for _, t := range h.Tags {
		for _, sep := range []string{"=", ":"} {
			if v, ok := strings.CutPrefix(t, "environment"+sep); ok && strings.TrimSpace(v) != "" {
				return v
			}
		}
	}
	return ""
}

// stringsAttribute reads an attribute that holds a string or a list of strings, keeping the
// strings that are usable as names, up to MaxListLen of them.
func stringsAttribute(v any) []string {
	var l []any
	switch v := v.(type) {
	case string:
		l = []any{v}
	case []any:
		l = v
	}
	var out []string
	for _, e := range l {
		if s, ok := e.(string); ok && usableName(s) && len(out) < MaxListLen {
			out = append(out, s)
		}
	}
	return out
}

// usableName reports whether an attribute's value can stand for an environment or a service
// of an alert.
func usableName(s string) bool {
	return strings.TrimSpace(s) != "" && checkString(s, MaxNameLen) == ""
}

// fieldChecker collects a *FieldError for each field that breaks a rule.
type fieldChecker struct{ errs []error }

func (v *fieldChecker) add(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *fieldChecker) str(field, s string, maxLen int, required bool) {
	if required && strings.TrimSpace(s) == "" {
		v.add(field, "required")
		return
	}
	if msg := checkString(s, maxLen); msg != "" {
		v.add(field, "%s", msg)
	}
}

func (v *fieldChecker) list(field string, l []string) {
	if len(l) > MaxListLen {
		v.add(field, "more than %d entries", MaxListLen)
		return
	}
	for i, s := range l {
		if msg := checkString(s, MaxNameLen); msg != "" {
			v.add(fmt.Sprintf("%s[%d]", field, i), "%s", msg)
			return
		}
	}
}

// wireObject holds the members of one JSON object of an Alerta request body, decoded one by
// one so that each member of a wrong type is reported by name.
type wireObject struct {
	m    map[string]json.RawMessage
	errs []error
}

// decodeObject parses body as one JSON object; anything else is an error wrapping ErrInvalid.
func decodeObject(body []byte) (*wireObject, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("%w: malformed JSON at byte %d: %w", ErrInvalid, syn.Offset, syn)
		}
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrInvalid)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrInvalid)
	}
	return &wireObject{m: m}, nil
}

func (d *wireObject) fail(name, msg string) {
	d.errs = append(d.errs, &FieldError{Field: name, Msg: msg})
}

// has reports whether member name is present and not null.
func (d *wireObject) has(name string) bool {
	raw, ok := d.m[name]
	return ok && string(raw) != "null"
}

// get decodes member name into dst and reports whether it did; a missing member or null
// leaves dst as it is.
func (d *wireObject) get(name string, dst any) bool {
	if !d.has(name) {
		return false
	}
	if err := json.Unmarshal(d.m[name], dst); err != nil {
		d.fail(name, "want "+wireType(dst))
		return false
	}
	return true
}

// getCustomer decodes customer, which Alerta refuses empty.
func (d *wireObject) getCustomer(dst *string) {
	if d.get("customer", dst) && *dst == "" {
		d.fail("customer", "must not be empty")
	}
}

// getAttributes decodes an object keeping numbers as written (json.Number), so a large
// integer is not rounded through float64.
func (d *wireObject) getAttributes(name string, dst *map[string]any) {
	if !d.has(name) {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(d.m[name]))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		d.fail(name, "want an object")
	}
}

// getTime decodes an RFC 3339 time; a missing member or null is def.
func (d *wireObject) getTime(name string, def time.Time) time.Time {
	var s string
	d.get(name, &s)
	if s == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.fail(name, "want an RFC 3339 time such as 2006-01-02T15:04:05.000Z")
		return def
	}
	return t
}

func wireType(dst any) string {
	switch dst.(type) {
	case *string, **string:
		return "a string"
	case *[]string:
		return "a list of strings"
	case *int, **int:
		return "an integer"
	}
	return "another JSON type"
}
