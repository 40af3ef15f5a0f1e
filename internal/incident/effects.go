package incident

import (
	"fmt"
	"strconv"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

// change names what an outcome did that people hear about: an alert raised, escalated,
// reopened or closed. Plain duplicates, and changes to a better but not normal severity,
// are recorded on the alert's history only.
func change(o Outcome) string {
	a, prev := o.Alert, o.Previous
	switch {
	case prev == nil:
		if a.Status == StatusClosed {
			return "" // born closed: a normal-severity alert with nothing to clear
		}
		return notify.EventAlertRaised
	case a.Status == StatusClosed && prev.Status != StatusClosed:
		return notify.EventAlertClosed
	case a.Status == StatusOpen && prev.Status == StatusBlackout:
		return notify.EventAlertRaised // raised in a blackout, told now that it is over
	case a.Status == StatusOpen && (prev.Status == StatusClosed || prev.Status == StatusExpired || prev.Status == StatusAck):
		return notify.EventAlertReopened
	case a.Status == StatusOpen && a.Severity.Rank() < prev.Severity.Rank():
		return notify.EventAlertEscalated
	}
	return ""
}

// EffectsOf is what an outcome causes: a timeline event on the alert's release and the
// notifications route returns for it, keyed by the alert's history so that each change is
// told once. An alert in a blackout is recorded on the timeline but notifies nobody.
func EffectsOf(o Outcome, route func(notify.Event) []notify.Notification, alertURL func(id string) string) Effects {
	typ := change(o)
	if typ == "" {
		return Effects{}
	}
	a := o.Alert
	summary := fmt.Sprintf("[%s] %s on %s (%s): %s", a.Severity, a.Event, a.Resource, a.Environment, a.Status)
	key := "alert/" + a.ID + "/" + strconv.Itoa(len(a.History)) + "/" + typ
	eff := Effects{Events: []release.Event{{
		Type: release.EventType(typ), Time: a.UpdateTime, Summary: truncate(summary, 4000), Key: key,
		Attributes: map[string]string{"alert": a.ID, "severity": string(a.Severity), "event": a.Event, "resource": a.Resource},
	}}}
	if a.Status == StatusBlackout || route == nil {
		return eff
	}
	e := notify.Event{
		Type: typ, Time: a.UpdateTime, Summary: summary, Environment: a.Environment, ReleaseID: a.ReleaseID,
		Object: a.Resource, Reason: a.Text,
		Attributes: map[string]string{"alert": a.ID, "severity": string(a.Severity), "event": a.Event,
			"status": string(a.Status), "group": a.Group},
	}
	if o.Previous != nil {
		e.Attributes["previousSeverity"] = string(o.Previous.Severity)
	}
	if r := o.Release; r != nil {
		e.Application, e.Revision, e.CommitMessage, e.Author = r.Application, r.Revision, r.CommitMessage, r.Author
	}
	if alertURL != nil {
		e.URL = alertURL(a.ID)
	}
	for _, n := range route(e) {
		n.Key = key
		eff.Notifications = append(eff.Notifications, n)
	}
	return eff
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s[:n])
	return string(r[:len(r)-1]) + "…"
}
