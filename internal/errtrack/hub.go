package errtrack

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

// HubOptions are the error tracker's collaborators. The zero value stores events and tells
// no one.
type HubOptions struct {
	// Route returns the notifications of an event, one per subscribed channel; nil sends none.
	Route func(notify.Event) []notify.Notification
	// Kick wakes the notification worker after notifications were stored.
	Kick func()
	// Changed, when set, is called after every stored change, for the panel's live lists.
	// It must not block.
	Changed func()
	// IssueURL links an issue's page in the panel.
	IssueURL func(id int64) string
	// Spike is the threshold of error.spike notifications; zero sends none.
	Spike Spike
}

// Hub ingests events and operators' changes to issues, and stores each with its timeline
// events and notifications in one transaction.
type Hub struct {
	store Store
	opts  HubOptions
}

// NewHub returns the error tracker over store.
func NewHub(store Store, opts HubOptions) *Hub { return &Hub{store: store, opts: opts} }

// Store returns the hub's store, for the reads that need nothing else.
func (h *Hub) Store() Store { return h.store }

// Ingest decodes one event payload, as an SDK sent it, normalizes it and groups it into its
// project's issue. clientIP, when known, stands in for a user IP address the SDK left as
// "{{auto}}". A payload that is not an event is an error wrapping ErrInvalid.
func (h *Hub) Ingest(ctx context.Context, projectID int64, payload []byte, clientIP string, now time.Time) (Outcome, error) {
	e, err := DecodeEvent(payload)
	if err != nil {
		return Outcome{}, err
	}
	e.Normalize()
	if e.User != nil && e.User.IPAddress == autoIP {
		e.User.IPAddress = clientIP
	}
	var eff Effects
	o, err := h.store.IngestEvent(ctx, projectID, e, IngestOptions{Now: now, Spike: h.opts.Spike,
		Effects: func(o Outcome) Effects {
			eff = h.effects(o)
			return eff
		}})
	if err == nil {
		h.kick(eff)
	}
	o.EventID = e.EventID
	return o, err
}

// autoIP is what the SDKs send as a user's IP address to ask the server to fill in the
// client's.
const autoIP = "{{auto}}"

// Act runs an operator's action on an issue. For resolve_in_next_release without a
// release, the issue's latest release is the one the next must come after.
func (h *Hub) Act(ctx context.Context, id int64, action Action, rel string) (Issue, error) {
	var eff Effects
	is, err := h.store.UpdateIssue(ctx, id, func(is Issue) (Issue, error) {
		r := rel
		if r == "" && action == ActionResolveInNextRelease {
			r = is.LastRelease
		}
		return Apply(is, action, r, time.Now())
	}, func(o Outcome) Effects {
		eff = h.effects(o)
		return eff
	})
	if err == nil {
		h.kick(eff)
	}
	return is, err
}

func (h *Hub) kick(eff Effects) {
	if h.opts.Changed != nil {
		h.opts.Changed()
	}
	if len(eff.Notifications) > 0 && h.opts.Kick != nil {
		h.opts.Kick()
	}
}

// effects is what an outcome causes: error.new, error.regressed or error.spike on the
// timeline of the release the event came from, and the notifications the router returns for
// it. Grouped events and operators' changes cause nothing beyond themselves.
func (h *Hub) effects(o Outcome) Effects {
	var typ, summary string
	is := o.Issue
	switch {
	case o.Kind == KindNew:
		typ, summary = notify.EventErrorNew, "new issue: "+is.Title
	case o.Kind == KindRegressed:
		typ, summary = notify.EventErrorRegressed, "regression: "+is.Title
		if o.Previous != nil && o.Previous.ResolvedIn != "" {
			summary += " (resolved in " + o.Previous.ResolvedIn + ")"
		}
	case o.Spike:
		typ, summary = notify.EventErrorSpike, fmt.Sprintf("spike: %s (%d events in %s)",
			is.Title, h.opts.Spike.Count, h.opts.Spike.Window)
	default:
		return Effects{}
	}
	summary = truncate(summary, maxSummary)
	key := "issue/" + strconv.FormatInt(is.ID, 10) + "/" + strconv.FormatInt(is.Count, 10) + "/" + typ
	attrs := map[string]string{"issue": strconv.FormatInt(is.ID, 10), "level": string(is.Level),
		"culprit": is.Culprit, "release": is.LastRelease, "count": strconv.FormatInt(is.Count, 10)}
	eff := Effects{Events: []release.Event{{Type: release.EventType(typ), Time: is.LastSeen, Summary: summary,
		Key: key, Attributes: attrs}}}
	if h.opts.Route == nil {
		return eff
	}
	e := notify.Event{Type: typ, Time: is.LastSeen, Summary: summary, Reason: is.Culprit, Attributes: attrs}
	if len(is.Environments) > 0 {
		e.Environment = is.Environments[len(is.Environments)-1]
	}
	if r := o.Release; r != nil {
		e.Application, e.Environment, e.ReleaseID = r.Application, r.Environment, r.ID
		e.Revision, e.CommitMessage, e.Author = r.Revision, r.CommitMessage, r.Author
	}
	if h.opts.IssueURL != nil {
		e.URL = h.opts.IssueURL(is.ID)
	}
	for _, n := range h.opts.Route(e) {
		n.Key = key
		eff.Notifications = append(eff.Notifications, n)
	}
	return eff
}

// maxSummary bounds a timeline summary, in bytes.
const maxSummary = 1000
