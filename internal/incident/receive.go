package incident

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Kind says what an incoming alert did to the stored ones.
type Kind string

// The kinds of Receive's decision.
const (
	// KindNew is an alert that matched no stored alert: the store inserts it.
	KindNew Kind = "new"
	// KindDuplicate is a repeat of a stored alert (same identity, same severity): the store
	// updates that alert.
	KindDuplicate Kind = "duplicate"
	// KindCorrelated is a stored alert at another state (same identity at another
	// severity, or an event in a correlate list): the store updates that alert.
	KindCorrelated Kind = "correlated"
	// KindUpdated is a change by an operator or housekeeping (Apply, SetStatus), not by a
	// received alert.
	KindUpdated Kind = "updated"
)

// The history change types, as Alerta names them. An operator action is recorded under its
// own name (ack, shelve, ...), see Apply.
const (
	ChangeNew      = "new"
	ChangeSeverity = "severity"
	ChangeStatus   = "status"
	ChangeValue    = "value"
	ChangeAction   = "action"
	ChangeExpired  = "expired"
	ChangeTimeout  = "timeout"
)

// The fields an Identity may name, besides "attributes.<name>".
var identityFields = []string{"environment", "resource", "event", "customer", "group", "origin", "type"}

// Identity is the de-duplication key: the fields whose values together name one alert.
// Alerta's is fixed to environment, resource, event and customer; Ferry's is configurable,
// for example to add "attributes.cluster" or drop "customer". The zero Identity is
// DefaultIdentity.
type Identity struct {
	// Keys are the field names, among environment, resource, event, customer, group,
	// origin, type and attributes.<name>. They must include environment, resource and
	// event, so that a store always finds the candidates by environment and resource.
	Keys []string
}

// DefaultIdentity returns Alerta's identity: environment, resource, event, customer.
func DefaultIdentity() Identity {
	return Identity{Keys: []string{"environment", "resource", "event", "customer"}}
}

// NewIdentity returns the Identity of keys after checking them.
func NewIdentity(keys []string) (Identity, error) {
	id := Identity{Keys: slices.Clone(keys)}
	return id, id.Validate()
}

// Validate reports an unknown, repeated or missing key, wrapping ErrInvalid.
func (id Identity) Validate() error {
	seen := map[string]bool{}
	for _, k := range id.Keys {
		if !slices.Contains(identityFields, k) && (!strings.HasPrefix(k, "attributes.") || k == "attributes.") {
			return fmt.Errorf("dedup key %q: %w: want one of %s or attributes.<name>", k, ErrInvalid, strings.Join(identityFields, ", "))
		}
		if seen[k] {
			return fmt.Errorf("dedup key %q: %w: repeated", k, ErrInvalid)
		}
		seen[k] = true
	}
	for _, k := range []string{"environment", "resource", "event"} {
		if !seen[k] {
			return fmt.Errorf("dedup keys: %w: must include %s", ErrInvalid, k)
		}
	}
	return nil
}

func (id Identity) keys() []string {
	if len(id.Keys) == 0 {
		return DefaultIdentity().Keys
	}
	return id.Keys
}

// Key returns a's identity as one string, the same for every alert that is the same
// alert, for the store's unique index (one stored alert per Key). It is a JSON array of
// the key fields' values; a store may hash it.
func (id Identity) Key(a Alert) string { return id.encode(a, true) }

// ScopeKey returns Key without the event: the alerts sharing a ScopeKey are the ones an
// incoming alert can duplicate or correlate with.
func (id Identity) ScopeKey(a Alert) string { return id.encode(a, false) }

func (id Identity) encode(a Alert, withEvent bool) string {
	var vals []string
	for _, k := range id.keys() {
		if k == "event" && !withEvent {
			continue
		}
		vals = append(vals, field(a, k))
	}
	b, _ := json.Marshal(vals) // a []string always marshals
	return string(b)
}

// Has reports whether the identity includes the field key, so a store knows whether to
// narrow its candidates by customer.
func (id Identity) Has(key string) bool { return slices.Contains(id.keys(), key) }

// sameScope reports whether a and b agree on every key but the event.
func (id Identity) sameScope(a, b Alert) bool {
	for _, k := range id.keys() {
		if k != "event" && field(a, k) != field(b, k) {
			return false
		}
	}
	return true
}

// field returns the value of one identity field of a.
func field(a Alert, k string) string {
	switch k {
	case "environment":
		return a.Environment
	case "resource":
		return a.Resource
	case "event":
		return a.Event
	case "customer":
		return a.Customer
	case "group":
		return a.Group
	case "origin":
		return a.Origin
	case "type":
		return a.EventType
	}
	name, _ := strings.CutPrefix(k, "attributes.")
	switch v := a.Attributes[name].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

// Rules are the configurable parts of Receive's decision.
type Rules struct {
	// Identity is the de-duplication key; the zero value is DefaultIdentity.
	Identity Identity
	// Blackout reports whether an active blackout window covers the alert as it will be
	// stored (after correlation, with its final event and severity); nil means none does.
	// Such an alert is stored like any other, with status blackout, so its notifications
	// are suppressed; it is never dropped.
	Blackout func(Alert) bool
}

// Receive decides what the incoming alert in does, given the stored alerts it may match,
// and returns the alert to store, the kind of the decision and the candidate it matched
// (nil for a new alert). It follows Alerta's rules:
//
//   - duplicate: a candidate with the same identity and severity. Its duplicateCount goes
//     up by one, repeat is true, lastReceiveId/Time are this receipt's; service, value,
//     text, timeout and rawData are the incoming ones, tags are the union and attributes
//     the merge (incoming wins). History grows only if the status or the value changes.
//   - correlated: a candidate with the same identity but the event at another severity;
//     or, failing that, one whose correlate list holds the incoming event or whose event
//     is in the incoming correlate list. It takes the incoming event, severity and
//     createTime; previousSeverity is the stored severity, trendIndication the move;
//     duplicateCount is 0, repeat false; the rest as for a duplicate; one "severity"
//     history entry, carrying the new status.
//   - new otherwise: id from newID, status open, previousSeverity indeterminate, one "new"
//     history entry.
//
// The status follows Alerta's state machine: a normal-class severity closes the alert
// from any status; else a blackout puts it in blackout; else a status the sender set
// other than open is kept; else closed, expired and blackout alerts reopen, an ack'ed
// alert reopens when the severity gets worse, and the rest keep their status.
//
// Candidates are what the store passes: at least every stored alert with the same
// ScopeKey as in — for the default identity, the same environment, resource and
// customer; for any valid one, the same environment and resource (and customer when
// the identity has it) is a superset. Receive ignores candidates outside in's scope, and
// takes the first match in the order given. Each candidate should carry its History:
// out.History is the matched candidate's History with the new entries appended.
//
// in must have passed Validate. Receive does not modify in or candidates. now is the
// receive time; newID is called once, for the new alert's id or this receipt's
// lastReceiveId. The store must apply the decision in one transaction with the scope
// locked (or retry on a unique-key conflict of Identity.Key), so that concurrent
// identical alerts all see the same stored alert.
func Receive(in Alert, candidates []Alert, now time.Time, newID func() string, rules Rules) (out Alert, kind Kind, matched *Alert) {
	id := rules.Identity
	var dup, sameEvent, listed *Alert
	for i := range candidates {
		c := &candidates[i]
		if !id.sameScope(*c, in) {
			continue
		}
		switch {
		case c.Event == in.Event && c.Severity == in.Severity:
			if dup == nil {
				dup = c
			}
		case c.Event == in.Event:
			if sameEvent == nil {
				sameEvent = c
			}
		case slices.Contains(c.Correlate, in.Event) || slices.Contains(in.Correlate, c.Event):
			if listed == nil {
				listed = c
			}
		}
	}
	blackout := func(a Alert) bool { return rules.Blackout != nil && rules.Blackout(a) }
	var prev *Alert
	switch {
	case dup != nil:
		kind, prev = KindDuplicate, dup
		out = duplicate(in, *dup, now, newID(), blackout)
	case sameEvent != nil:
		kind, prev = KindCorrelated, sameEvent
		out = correlate(in, *sameEvent, now, newID(), blackout)
	case listed != nil:
		kind, prev = KindCorrelated, listed
		out = correlate(in, *listed, now, newID(), blackout)
	default:
		return create(in, now, newID(), blackout), KindNew, nil
	}
	p := cloneAlert(*prev)
	return out, kind, &p
}

func duplicate(in, stored Alert, now time.Time, receiveID string, blackout func(Alert) bool) Alert {
	out := cloneAlert(stored)
	out.Service = slices.Clone(in.Service)
	out.Value = in.Value
	out.Text = in.Text
	out.Timeout = in.Timeout
	out.RawData = in.RawData
	out.Tags = union(stored.Tags, in.Tags)
	out.Attributes = merge(stored.Attributes, in.Attributes)
	out.DuplicateCount++
	out.Repeat = true
	out.LastReceiveID = receiveID
	out.LastReceiveTime = now
	out.Status = receiveStatus(stored.Status, "", in, blackout(out))

	change := ""
	switch {
	case out.Status != stored.Status:
		change = ChangeStatus
	case in.Value != stored.Value:
		change = ChangeValue
	}
	if change != "" {
		out.UpdateTime = now
		out.History = append(out.History, History{
			ID: receiveID, Event: out.Event, Severity: out.Severity, Status: out.Status,
			Value: out.Value, Text: in.Text, ChangeType: change, UpdateTime: now, Timeout: out.Timeout,
		})
	}
	return out
}

func correlate(in, stored Alert, now time.Time, receiveID string, blackout func(Alert) bool) Alert {
	out := cloneAlert(stored)
	out.Event = in.Event
	out.Severity = in.Severity
	out.PreviousSeverity = stored.Severity
	out.TrendIndication = TrendBetween(stored.Severity, in.Severity)
	out.Service = slices.Clone(in.Service)
	out.Value = in.Value
	out.Text = in.Text
	out.CreateTime = orNow(in.CreateTime, now)
	out.Timeout = in.Timeout
	out.RawData = in.RawData
	out.Tags = union(stored.Tags, in.Tags)
	out.Attributes = merge(stored.Attributes, in.Attributes)
	out.DuplicateCount = 0
	out.Repeat = false
	out.ReceiveTime = now
	out.LastReceiveID = receiveID
	out.LastReceiveTime = now
	out.UpdateTime = now
	out.Status = receiveStatus(stored.Status, stored.Severity, in, blackout(out))
	out.History = append(out.History, History{
		ID: receiveID, Event: out.Event, Severity: out.Severity, Status: out.Status,
		Value: out.Value, Text: in.Text, ChangeType: ChangeSeverity, UpdateTime: now, Timeout: out.Timeout,
	})
	return out
}

func create(in Alert, now time.Time, id string, blackout func(Alert) bool) Alert {
	out := cloneAlert(in)
	out.ID = id
	out.CreateTime = orNow(in.CreateTime, now)
	out.DuplicateCount = 0
	out.Repeat = false
	out.PreviousSeverity = DefaultPreviousSeverity
	out.TrendIndication = TrendBetween(DefaultPreviousSeverity, in.Severity)
	out.ReceiveTime = now
	out.LastReceiveID = id
	out.LastReceiveTime = now
	out.UpdateTime = now
	out.Status = receiveStatus("", "", in, blackout(out))
	out.History = []History{{
		ID: id, Event: out.Event, Severity: out.Severity, Status: out.Status,
		Value: out.Value, Text: out.Text, ChangeType: ChangeNew, UpdateTime: now, Timeout: out.Timeout,
	}}
	return out
}

// receiveStatus is Alerta's transition for a received alert (no operator action): current
// is the stored status ("" for a new alert), previous the stored severity when it
// changes ("" when it does not).
func receiveStatus(current Status, previous Severity, in Alert, blackout bool) Status {
	switch {
	case in.Severity.IsNormal():
		return StatusClosed
	case blackout:
		return StatusBlackout
	case in.Status != "" && in.Status != StatusOpen:
		return in.Status
	}
	switch current {
	case "", StatusOpen, StatusClosed, StatusExpired, StatusBlackout:
		return StatusOpen
	case StatusAck:
		if previous != "" && TrendBetween(previous, in.Severity) == TrendMoreSevere {
			return StatusOpen
		}
	}
	return current
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

// union returns a followed by the entries of b not in a, without repeats.
func union(a, b []string) []string {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make([]string, 0, len(a)+len(b))
	seen := make(map[string]bool, len(a)+len(b))
	for _, l := range [][]string{a, b} {
		for _, s := range l {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// merge returns a copy of a with b's keys set over it.
func merge(a, b map[string]any) map[string]any {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make(map[string]any, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// cloneAlert copies a so that appending to or setting its slices and map never touches a's.
func cloneAlert(a Alert) Alert {
	a.Correlate = slices.Clone(a.Correlate)
	a.Service = slices.Clone(a.Service)
	a.Tags = slices.Clone(a.Tags)
	a.Attributes = maps.Clone(a.Attributes)
	a.History = slices.Clone(a.History)
	return a
}
