package panel

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/web"
)

// IncidentOptions feed the incident board; a nil Hub hides it.
type IncidentOptions struct {
	Hub        web.Incidents
	Heartbeats web.HeartbeatStore
	Blackouts  web.BlackoutStore
}

// alertsPageSize is the number of alerts a board page shows.
const alertsPageSize = 50

// defaultStatuses are the statuses the board shows when the query names none: those of
// Alerta's console, open and ack, the alerts someone still has to look at. Shelved,
// blackout, closed and expired alerts are one filter away.
var defaultStatuses = []incident.Status{incident.StatusOpen, incident.StatusAck}

// anyStatus, as ?status=any, lifts the default status filter.
const anyStatus = "any"

// boardSorts maps the board's ?sort= to Alerta's sort-by keys; lastReceiveTime, newest
// first, is the default and breaks ties.
var boardSorts = map[string][]string{
	"":               {"lastReceiveTime"},
	"severity":       {"severity", "lastReceiveTime"},
	"duplicateCount": {"-duplicateCount", "lastReceiveTime"},
}

// boardFilters are the query parameters the board passes on to incident.ParseQuery as
// Alerta's filters, with Alerta's names.
var boardFilters = []string{"environment", "service", "severity", "q"}

// actionLabels are the buttons' words for incident's actions.
var actionLabels = map[string]string{
	incident.ActionOpen: "Reopen", incident.ActionAck: "Ack", incident.ActionUnack: "Unack",
	incident.ActionShelve: "Shelve", incident.ActionUnshelve: "Unshelve", incident.ActionClose: "Close",
}

func (p *Panel) routeIncidents() {
	o := p.opts.Incidents
	if o.Hub == nil {
		return
	}
	p.mux.Handle("GET /incidents", p.view(auth.RoleViewer, p.alertBoard))
	p.mux.Handle("GET /alerts/{id}", p.view(auth.RoleViewer, p.alertPage))
	p.mux.Handle("POST /alerts/{id}/action", p.action(auth.RoleOperator, p.alertAction))
	if o.Heartbeats != nil || o.Blackouts != nil {
		p.mux.Handle("GET /heartbeats", p.view(auth.RoleViewer, p.heartbeatsPage))
	}
	if o.Heartbeats != nil {
		p.mux.Handle("POST /heartbeats/{id}/delete", p.action(auth.RoleAdmin, p.heartbeatDelete))
	}
	if o.Blackouts != nil {
		p.mux.Handle("POST /blackouts", p.action(auth.RoleOperator, p.blackoutCreate))
		p.mux.Handle("POST /blackouts/{id}/delete", p.action(auth.RoleOperator, p.blackoutDelete))
	}
}

// actionButton is one action an operator may take on an alert now.
type actionButton struct{ Value, Label string }

// actionsFor returns those of actions that a's status allows. It asks incident.Apply, the
// state machine Hub.Action runs, so the buttons never offer what the hub would refuse.
func actionsFor(a incident.Alert, now time.Time, actions ...string) []actionButton {
	var out []actionButton
	for _, act := range actions {
		if _, err := incident.Apply(a, act, "", "", 0, now); err == nil {
			out = append(out, actionButton{Value: act, Label: actionLabels[act]})
		}
	}
	return out
}

// alertRow is one line of the board.
type alertRow struct {
	incident.Alert
	Actions []actionButton
}

// severityCount is one entry of the board's summary bar.
type severityCount struct {
	Severity string
	Count    int
}

// statusOption is one checkbox of the board's status filter.
type statusOption struct {
	Status  string
	Checked bool
}

type alertBoard struct {
	Rows   []alertRow
	Pager  Pager
	Counts []severityCount
	// Severities and Statuses are the filter's choices.
	Severities []string
	Statuses   []statusOption
	// Next is the board's URL, where the row actions come back to.
	Next          string
	CanOperate    bool
	HasHeartbeats bool
}

// boardQuery turns the board's query string into an incident.Query through Alerta's own
// parser, so the board filters and sorts exactly as GET /api/alerts does. Empty form
// fields filter nothing; an unknown severity, status, sort or page is an error wrapping
// incident.ErrInvalid or errBadRequest.
func boardQuery(v url.Values) (incident.Query, error) {
	a := url.Values{}
	for _, k := range boardFilters {
		for _, s := range v[k] {
			if s = strings.TrimSpace(s); s != "" {
				a.Add(k, s)
			}
		}
	}
	statuses := shownStatuses(v)
	for _, s := range statuses {
		a.Add("status", string(s))
	}
	sort, ok := boardSorts[v.Get("sort")]
	if !ok {
		return incident.Query{}, fmt.Errorf("%w: sort %q: want severity or duplicateCount", errBadRequest, v.Get("sort"))
	}
	a["sort-by"] = slices.Clone(sort)
	if page := v.Get("page"); page != "" {
		a.Set("page", page)
	}
	a.Set("page-size", strconv.Itoa(alertsPageSize))
	return incident.ParseQuery(a)
}

// shownStatuses is the board's status filter: the ?status= values, defaultStatuses when
// there are none, nil (every status) for ?status=any.
func shownStatuses(v url.Values) []incident.Status {
	var out []incident.Status
	for _, s := range v["status"] {
		switch s = strings.TrimSpace(s); s {
		case "":
		case anyStatus:
			return nil
		default:
			out = append(out, incident.Status(s))
		}
	}
	if len(out) == 0 {
		return defaultStatuses
	}
	return out
}

// allStatuses lists every status, in Alerta's order.
var allStatuses = []incident.Status{
	incident.StatusOpen, incident.StatusAssign, incident.StatusAck, incident.StatusShelved,
	incident.StatusBlackout, incident.StatusClosed, incident.StatusExpired, incident.StatusUnknown,
}

// alertBoard is GET /incidents: the alerts of the query string's filters (status,
// severity, environment, service, q), sorted by lastReceiveTime, severity or
// duplicateCount, 50 a page, with their severity counts.
func (p *Panel) alertBoard(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q, err := boardQuery(v)
	if err != nil {
		return err
	}
	list, err := p.opts.Incidents.Hub.Find(r.Context(), q)
	if err != nil {
		return err
	}
	u, _ := auth.UserFrom(r.Context())
	page := alertBoard{
		Pager:         newPager(v, alertsPageSize, list.Total),
		Next:          r.URL.Path,
		CanOperate:    u.Role.Allows(auth.RoleOperator),
		HasHeartbeats: p.opts.Incidents.Heartbeats != nil || p.opts.Incidents.Blackouts != nil,
	}
	if r.URL.RawQuery != "" {
		page.Next += "?" + r.URL.RawQuery
	}
	now := time.Now()
	for _, a := range list.Alerts {
		row := alertRow{Alert: a}
		if page.CanOperate {
			row.Actions = actionsFor(a, now, incident.ActionAck, incident.ActionShelve, incident.ActionClose)
		}
		page.Rows = append(page.Rows, row)
	}
	for _, s := range incident.Severities() {
		page.Severities = append(page.Severities, string(s))
		if n := list.SeverityCounts[s]; n > 0 {
			page.Counts = append(page.Counts, severityCount{Severity: string(s), Count: n})
		}
	}
	shown := shownStatuses(v)
	for _, s := range allStatuses {
		page.Statuses = append(page.Statuses, statusOption{Status: string(s), Checked: shown == nil || slices.Contains(shown, s)})
	}
	p.render(w, r, "incidents", View{Title: "Incidents", Nav: "incidents", Live: TopicAlerts, Data: page})
	return nil
}

// attribute is one of an alert's attributes, its value as text: a string as it is, the rest
// as JSON.
type attribute struct{ Key, Value string }

type alertPage struct {
	Alert      incident.Alert
	Attributes []attribute
	// History is newest first.
	History []incident.History
	Actions []actionButton
	// TakesTimeout says whether one of Actions (ack, shelve) takes a timeout.
	TakesTimeout bool
	CanOperate   bool
}

// alertPage is GET /alerts/{id}: every field of the alert, its history, and the actions
// its status allows.
func (p *Panel) alertPage(w http.ResponseWriter, r *http.Request) error {
	a, err := p.opts.Incidents.Hub.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	u, _ := auth.UserFrom(r.Context())
	page := alertPage{Alert: a, CanOperate: u.Role.Allows(auth.RoleOperator)}
	if page.CanOperate {
		page.Actions = actionsFor(a, time.Now(), incident.ActionAck, incident.ActionUnack, incident.ActionShelve,
			incident.ActionUnshelve, incident.ActionClose, incident.ActionOpen)
		page.TakesTimeout = slices.ContainsFunc(page.Actions, func(b actionButton) bool {
			return b.Value == incident.ActionAck || b.Value == incident.ActionShelve
		})
	}
	for _, k := range slices.Sorted(maps.Keys(a.Attributes)) {
		page.Attributes = append(page.Attributes, attribute{Key: k, Value: attributeText(a.Attributes[k])})
	}
	page.History = slices.Clone(a.History)
	slices.Reverse(page.History)
	p.render(w, r, "alert", View{Title: a.Event + " on " + a.Resource, Nav: "incidents", Live: TopicAlerts, Data: page})
	return nil
}

func attributeText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// alertAction is POST /alerts/{id}/action: the form's action (ack, shelve, ...), with an
// optional text and timeout in seconds (for ack and shelve; empty or 0 is the default), run
// by the hub in the user's name.
func (p *Panel) alertAction(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	timeout := 0
	if s := strings.TrimSpace(r.PostFormValue("timeout")); s != "" {
		var err error
		if timeout, err = strconv.Atoi(s); err != nil {
			return fmt.Errorf("%w: timeout %q is not a number of seconds", errBadRequest, s)
		}
	}
	u, _ := auth.UserFrom(r.Context())
	_, err := p.opts.Incidents.Hub.Action(r.Context(), id, r.PostFormValue("action"),
		strings.TrimSpace(r.PostFormValue("text")), u.Name, timeout)
	if err != nil {
		return err
	}
	// The hub's Changed hook tells the open boards.
	return redirectBack(w, r, "/alerts/"+url.PathEscape(id))
}

type heartbeatsPage struct {
	// Heartbeats and Blackouts say whether their store is configured.
	Heartbeats, Blackouts bool
	// HeartbeatList and BlackoutList are as they look now (incident's At).
	HeartbeatList          []incident.Heartbeat
	BlackoutList           []incident.Blackout
	CanOperate, CanAdmin   bool
	DefaultDurationMinutes int
}

// heartbeatsPage is GET /heartbeats: the senders' heartbeats and the blackout windows.
func (p *Panel) heartbeatsPage(w http.ResponseWriter, r *http.Request) error {
	o := p.opts.Incidents
	u, _ := auth.UserFrom(r.Context())
	page := heartbeatsPage{Heartbeats: o.Heartbeats != nil, Blackouts: o.Blackouts != nil,
		CanOperate: u.Role.Allows(auth.RoleOperator), CanAdmin: u.Role.Allows(auth.RoleAdmin),
		DefaultDurationMinutes: incident.DefaultBlackoutDuration / 60}
	now := time.Now()
	if o.Heartbeats != nil {
		hbs, err := o.Heartbeats.ListHeartbeats(r.Context())
		if err != nil {
			return err
		}
		for _, hb := range hbs {
			page.HeartbeatList = append(page.HeartbeatList, hb.At(now))
		}
	}
	if o.Blackouts != nil {
		bs, err := o.Blackouts.ListBlackouts(r.Context())
		if err != nil {
			return err
		}
		for _, b := range bs {
			page.BlackoutList = append(page.BlackoutList, b.At(now))
		}
	}
	p.render(w, r, "heartbeats", View{Title: "Heartbeats and blackouts", Nav: "incidents", Data: page})
	return nil
}

// heartbeatDelete is POST /heartbeats/{id}/delete, for admins as the API's DELETE is.
func (p *Panel) heartbeatDelete(w http.ResponseWriter, r *http.Request) error {
	if err := p.opts.Incidents.Heartbeats.DeleteHeartbeat(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	return redirectBack(w, r, "/heartbeats")
}

// blackoutCreate is POST /blackouts: a window from now, in the user's name, over the
// form's environment (required) and, narrowing it, service, resource, event, group and tags
// (lists comma-separated). It ends at the form's end (UTC) or after its duration in
// minutes, else after incident's default duration. The store validates it with the
// domain's rules; a broken rule is a 400 page.
func (p *Panel) blackoutCreate(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	u, _ := auth.UserFrom(r.Context())
	b, err := blackoutOf(r.PostForm, u.Name, time.Now().UTC())
	if err != nil {
		return err
	}
	if _, err := p.opts.Incidents.Blackouts.CreateBlackout(r.Context(), b); err != nil {
		return err
	}
	return redirectBack(w, r, "/heartbeats")
}

// endLayouts are the forms of a blackout's end: an <input type="datetime-local">, read as
// UTC, or RFC 3339.
var endLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339}

// blackoutOf reads the blackout form, submitted at now by user. Only what the form itself
// spells (a number, a time) is checked here; the blackout's rules are incident's, applied
// by the store.
func blackoutOf(f url.Values, user string, now time.Time) (incident.Blackout, error) {
	get := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	b := incident.Blackout{
		Environment: get("environment"), Service: splitList(get("service")), Resource: get("resource"),
		Event: get("event"), Group: get("group"), Tags: splitList(get("tags")), Text: get("text"),
		User: user, StartTime: now, CreateTime: now,
	}
	duration := incident.DefaultBlackoutDuration
	switch end, minutes := get("end"), get("duration"); {
	case end != "":
		for _, layout := range endLayouts {
			if t, err := time.Parse(layout, end); err == nil {
				b.EndTime = t.UTC()
				break
			}
		}
		if b.EndTime.IsZero() {
			return b, &incident.FieldError{Field: "endTime", Msg: fmt.Sprintf("%q is not a time such as 2006-01-02T15:04", end)}
		}
	case minutes != "":
		m, err := strconv.Atoi(minutes)
		if err != nil || m < 0 || m > incident.MaxTimeout/60 {
			return b, &incident.FieldError{Field: "duration", Msg: fmt.Sprintf("%q: want minutes from 1 to %d", minutes, incident.MaxTimeout/60)}
		}
		// Zero is the default, as Alerta reads a zero duration.
		duration = cmp.Or(m*60, duration)
	}
	if b.EndTime.IsZero() {
		b.EndTime = now.Add(time.Duration(duration) * time.Second)
	}
	b.Duration = int(b.EndTime.Sub(b.StartTime) / time.Second)
	return b, nil
}

// splitList splits a comma-separated form field, dropping empty entries.
func splitList(s string) []string {
	out := []string{}
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// blackoutDelete is POST /blackouts/{id}/delete. The alerts the blackout covered keep
// their status until they next change.
func (p *Panel) blackoutDelete(w http.ResponseWriter, r *http.Request) error {
	if err := p.opts.Incidents.Blackouts.DeleteBlackout(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	return redirectBack(w, r, "/heartbeats")
}
