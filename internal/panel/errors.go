package panel

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/errtrack"
)

// ErrorOptions feed the error tracker's pages; a nil Hub hides them.
type ErrorOptions struct {
	Hub *errtrack.Hub
}

// issuesPageSize is the number of issues a list page shows.
const issuesPageSize = 50

// sparkHours is how many hours an issue's sparkline covers.
const sparkHours = 24

// routeErrors adds the issue list, the issue page and its actions.
func (p *Panel) routeErrors() {
	if p.opts.Errors.Hub == nil {
		return
	}
	p.mux.Handle("GET /issues", p.view(auth.RoleViewer, p.issueList))
	p.mux.Handle("GET /issues/{id}", p.view(auth.RoleViewer, p.issuePage))
	p.mux.Handle("POST /issues/{id}/action", p.action(auth.RoleOperator, p.issueAction))
}

func (p *Panel) errStore() errtrack.Store { return p.opts.Errors.Hub.Store() }

// issueRow is one line of the issue list.
type issueRow struct {
	errtrack.Issue
	Project string
	// Spark holds the events of each of the last 24 hours, oldest first.
	Spark []int64
}

type issueListPage struct {
	Rows     []issueRow
	Pager    Pager
	Projects []errtrack.Project
	// Status is the status filter in effect: a status, or "all".
	Status string
	Levels []errtrack.Level
}

// issueStatusAll is the status filter that selects every status; without a status
// parameter the list shows the unresolved issues, as Sentry's does.
const issueStatusAll = "all"

var issueLevels = []errtrack.Level{errtrack.LevelFatal, errtrack.LevelError, errtrack.LevelWarning,
	errtrack.LevelInfo, errtrack.LevelDebug}

// issueQuery reads the list's filters: project (ID), environment, release, status (default
// unresolved, or "all"), level, q (title or culprit), sort, page.
func issueQuery(v url.Values) (errtrack.IssueQuery, string, error) {
	q := errtrack.IssueQuery{Environment: v.Get("environment"), Release: v.Get("release"),
		Text: strings.TrimSpace(v.Get("q")), Limit: issuesPageSize, Offset: (PageOf(v) - 1) * issuesPageSize}
	if raw := v.Get("project"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			return q, "", fmt.Errorf("%w: project %q is not a project ID", errBadRequest, raw)
		}
		q.ProjectID = id
	}
	status := cmp.Or(v.Get("status"), string(errtrack.StatusUnresolved))
	switch st := errtrack.Status(status); {
	case status == issueStatusAll:
	case st.Valid():
		q.Status = []errtrack.Status{st}
	default:
		return q, "", fmt.Errorf("%w: status %q: want unresolved, resolved, resolved_in_next_release, ignored or all",
			errBadRequest, status)
	}
	if raw := v.Get("level"); raw != "" {
		if !slices.Contains(issueLevels, errtrack.Level(raw)) {
			return q, "", fmt.Errorf("%w: level %q: want fatal, error, warning, info or debug", errBadRequest, raw)
		}
		q.Level = []errtrack.Level{errtrack.Level(raw)}
	}
	switch s := errtrack.IssueSort(v.Get("sort")); s {
	case "", errtrack.SortLastSeen, errtrack.SortFirstSeen, errtrack.SortCount:
		q.Sort = s
	default:
		return q, "", fmt.Errorf("%w: sort %q: want last_seen, first_seen or count", errBadRequest, s)
	}
	return q, status, nil
}

// issueList is GET /issues: one page of the issues the filters select, with each issue's
// events per hour of the last day.
func (p *Panel) issueList(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	v := r.URL.Query()
	q, status, err := issueQuery(v)
	if err != nil {
		return err
	}
	projects, err := p.errStore().ListProjects(ctx)
	if err != nil {
		return err
	}
	list, err := p.errStore().FindIssues(ctx, q)
	if err != nil {
		return err
	}
	names := make(map[int64]string, len(projects))
	for _, pr := range projects {
		names[pr.ID] = pr.Name
	}
	page := issueListPage{Pager: newPager(v, issuesPageSize, list.Total), Projects: projects, Status: status,
		Levels: issueLevels, Rows: make([]issueRow, 0, len(list.Issues))}
	now := time.Now()
	for _, is := range list.Issues {
		spark, err := p.issueSpark(ctx, is.ID, now)
		if err != nil {
			return err
		}
		page.Rows = append(page.Rows, issueRow{Issue: is, Project: names[is.ProjectID], Spark: spark})
	}
	p.render(w, r, "issues", View{Title: "Errors", Nav: "errors", Live: TopicIssues, Data: page})
	return nil
}

// issueSpark returns the issue's events in each of the sparkHours hours up to now, oldest
// first; the last bucket is the hour now is in.
func (p *Panel) issueSpark(ctx context.Context, id int64, now time.Time) ([]int64, error) {
	start := now.UTC().Truncate(time.Hour).Add(-(sparkHours - 1) * time.Hour)
	hours, err := p.errStore().IssueHours(ctx, id, start)
	if err != nil {
		return nil, err
	}
	buckets := make([]int64, sparkHours)
	for _, h := range hours {
		if i := int(h.Hour.Sub(start) / time.Hour); h.Hour.Compare(start) >= 0 && i < sparkHours {
			buckets[i] += h.Count
		}
	}
	return buckets, nil
}

type issuePage struct {
	Issue    errtrack.Issue
	Project  string
	Spark    []int64
	Releases []errtrack.ReleaseCount
	// Event is the latest event; nil when retention deleted them all.
	Event *eventView
	// Actions are the actions the issue's status allows, for operators.
	Actions []issueAction
}

type issueAction struct {
	Action errtrack.Action
	Label  string
}

func issueID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: issue %q", errNotFound, r.PathValue("id"))
	}
	return id, nil
}

// issuePage is GET /issues/{id}: the issue, its events per release, and its latest event
// in full.
func (p *Panel) issuePage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, err := issueID(r)
	if err != nil {
		return err
	}
	s := p.errStore()
	is, err := s.GetIssue(ctx, id)
	if err != nil {
		return err
	}
	pr, err := s.GetProject(ctx, strconv.FormatInt(is.ProjectID, 10))
	if err != nil {
		return err
	}
	page := issuePage{Issue: is, Project: pr.Name}
	if page.Spark, err = p.issueSpark(ctx, id, time.Now()); err != nil {
		return err
	}
	if page.Releases, err = s.IssueReleases(ctx, id); err != nil {
		return err
	}
	events, err := s.IssueEvents(ctx, id, 1)
	if err != nil {
		return err
	}
	if len(events) > 0 {
		page.Event = newEventView(events[0])
	}
	if u, _ := auth.UserFrom(ctx); u.Role.Allows(auth.RoleOperator) {
		page.Actions = issueActions(is)
	}
	p.render(w, r, "issue", View{Title: truncate(80, is.Title), Nav: "errors", Live: TopicIssues, Data: page})
	return nil
}

// issueActions returns the actions is's status allows, as errtrack.Apply decides: resolve
// in the next release only when the issue has a release to come after.
func issueActions(is errtrack.Issue) []issueAction {
	labels := map[errtrack.Action]string{
		errtrack.ActionResolve:              "Resolve",
		errtrack.ActionResolveInNextRelease: "Resolve in next release",
		errtrack.ActionIgnore:               "Ignore",
		errtrack.ActionReopen:               "Reopen",
	}
	var out []issueAction
	for _, a := range errtrack.Actions() {
		if _, err := errtrack.Apply(is, a, is.LastRelease, time.Now()); err == nil {
			out = append(out, issueAction{Action: a, Label: labels[a]})
		}
	}
	return out
}

// issueAction is POST /issues/{id}/action: action (resolve, resolve_in_next_release,
// ignore, reopen) and an optional release, as the API's action takes them.
func (p *Panel) issueAction(w http.ResponseWriter, r *http.Request) error {
	id, err := issueID(r)
	if err != nil {
		return err
	}
	action := errtrack.Action(r.PostFormValue("action"))
	if _, err := p.opts.Errors.Hub.Act(r.Context(), id, action, strings.TrimSpace(r.PostFormValue("release"))); err != nil {
		return err
	}
	// The hub's Changed hook tells the open lists.
	return redirectBack(w, r, "/issues/"+strconv.FormatInt(id, 10))
}

// eventView is an event as the issue page shows it: what an operator needs to find the
// bug, with credentials (auth and cookie headers, token-like fields) filtered out.
type eventView struct {
	EventID    string
	ReceivedAt time.Time
	Timestamp  time.Time
	Message    string
	Platform   string
	Release    string
	Env        string
	ServerName string
	Transact   string
	Logger     string
	SDK        string
	// Exceptions lists the chain with the raised exception first, each with its frames
	// most recent call first, as Sentry shows them.
	Exceptions  []exceptionView
	Breadcrumbs []breadcrumbView
	Request     *requestView
	Contexts    []contextView
	Tags        errtrack.Pairs
	User        errtrack.Pairs
	// Cuts names the fields the ingest shortened or dropped.
	Cuts []string
}

type exceptionView struct {
	Type, Value, Module string
	Frames              []frameView
	// Omitted is how many frames the ingest cut out of the middle of the stack.
	Omitted int
}

type frameView struct {
	Module, Function, Location, ContextLine string
	InApp                                   bool
}

type breadcrumbView struct {
	Time                           time.Time
	Type, Category, Level, Message string
	Data                           string
}

type requestView struct {
	Method, URL string
	Headers     errtrack.Pairs
}

type contextView struct {
	Name   string
	Fields errtrack.Pairs
}

// filtered stands in for a value the panel does not show: the store holds none, since
// ingest filters them (errtrack.Filtered), and events stored before it did are filtered
// here too.
const filtered = errtrack.Filtered

// The lengths of values the event view shortens, in runes.
const (
	maxEventData  = 500
	maxEventField = 1000
)

func newEventView(se errtrack.StoredEvent) *eventView {
	e := se.Event
	v := &eventView{EventID: e.EventID, ReceivedAt: se.ReceivedAt, Timestamp: e.Timestamp, Platform: e.Platform,
		Release: e.Release, Env: e.Environment, ServerName: e.ServerName, Transact: e.Transaction, Logger: e.Logger,
		Tags: e.Tags}
	if le := e.LogEntry; le != nil {
		v.Message = cmp.Or(le.Formatted, le.Message)
	}
	if sdk := e.SDK; sdk != nil {
		v.SDK = strings.TrimSpace(sdk.Name + " " + sdk.Version)
	}
	for i := len(e.Exception) - 1; i >= 0; i-- {
		x := e.Exception[i]
		v.Exceptions = append(v.Exceptions, exceptionView{Type: x.Type, Value: x.Value, Module: x.Module,
			Frames: frameViews(x.Stacktrace), Omitted: omitted(x.Stacktrace)})
	}
	if !slices.ContainsFunc(v.Exceptions, func(x exceptionView) bool { return len(x.Frames) > 0 }) {
		// No exception has frames: the crashed thread's stack, else the event's own, as the
		// grouping uses them.
		if st := eventStack(e); st != nil {
			if len(v.Exceptions) > 0 {
				v.Exceptions[0].Frames, v.Exceptions[0].Omitted = frameViews(st), omitted(st)
			} else {
				v.Exceptions = []exceptionView{{Frames: frameViews(st), Omitted: omitted(st)}}
			}
		}
	}
	for _, b := range e.Breadcrumbs {
		v.Breadcrumbs = append(v.Breadcrumbs, breadcrumbView{Time: b.Timestamp, Type: b.Type, Category: b.Category,
			Level: string(b.Level), Message: truncate(maxEventField, b.Message), Data: scrubJSON(b.Data)})
	}
	if rq := e.Request; rq != nil {
		v.Request = &requestView{Method: rq.Method, URL: scrubURL(rq.URL)}
		for _, h := range rq.Headers {
			val := truncate(maxEventField, h.Value)
			if errtrack.SecretName(h.Key) {
				val = filtered
			}
			v.Request.Headers = append(v.Request.Headers, errtrack.Pair{Key: h.Key, Value: val})
		}
	}
	names := make([]string, 0, len(e.Contexts))
	for name := range e.Contexts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v.Contexts = append(v.Contexts, contextView{Name: name, Fields: contextFields(e.Contexts[name])})
	}
	if u := e.User; u != nil {
		for _, f := range []errtrack.Pair{{Key: "ID", Value: u.ID}, {Key: "Email", Value: u.Email},
			{Key: "Username", Value: u.Username}, {Key: "Name", Value: u.Name},
			{Key: "IP address", Value: u.IPAddress}, {Key: "Segment", Value: u.Segment}} {
			if f.Value != "" {
				v.User = append(v.User, f)
			}
		}
	}
	for _, c := range e.Cuts {
		v.Cuts = append(v.Cuts, c.Field+" ("+c.Reason+")")
	}
	return v
}

// eventStack is the stack trace of the crashed thread, else the current one, else the only
// one, else the event's own.
func eventStack(e errtrack.Event) *errtrack.Stacktrace {
	for _, pick := range []func(errtrack.Thread) bool{
		func(t errtrack.Thread) bool { return t.Crashed },
		func(t errtrack.Thread) bool { return t.Current },
		func(errtrack.Thread) bool { return len(e.Threads) == 1 },
	} {
		for _, t := range e.Threads {
			if pick(t) && t.Stacktrace != nil && len(t.Stacktrace.Frames) > 0 {
				return t.Stacktrace
			}
		}
	}
	if e.Stacktrace != nil && len(e.Stacktrace.Frames) > 0 {
		return e.Stacktrace
	}
	return nil
}

// frameViews returns st's frames most recent call first.
func frameViews(st *errtrack.Stacktrace) []frameView {
	if st == nil {
		return nil
	}
	out := make([]frameView, 0, len(st.Frames))
	for i := len(st.Frames) - 1; i >= 0; i-- {
		f := st.Frames[i]
		loc := cmp.Or(f.Filename, f.AbsPath)
		if f.Lineno > 0 {
			loc += ":" + strconv.Itoa(f.Lineno)
			if f.Colno > 0 {
				loc += ":" + strconv.Itoa(f.Colno)
			}
		}
		out = append(out, frameView{Module: cmp.Or(f.Module, f.Package),
			Function: cmp.Or(f.Function, f.RawFunction, f.Symbol, f.InstructionAddr, "?"), Location: loc,
			ContextLine: strings.TrimRight(f.ContextLine, " \t\r\n"), InApp: f.InApp != nil && *f.InApp})
	}
	return out
}

func omitted(st *errtrack.Stacktrace) int {
	if st == nil || len(st.FramesOmitted) != 2 {
		return 0
	}
	return max(0, st.FramesOmitted[1]-st.FramesOmitted[0])
}

// scrubURL returns u as errtrack.ScrubURL filters it, shortened for the page: ingest
// filters URLs already, and events stored before it did are filtered here too.
func scrubURL(raw string) string {
	return truncate(maxEventField, errtrack.ScrubURL(raw))
}

// scrubJSON returns raw as compact JSON text with the values of secret-looking keys
// filtered, at every depth; "" for no value.
func scrubJSON(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return ""
	}
	b, err := json.Marshal(errtrack.ScrubValue(v))
	if err != nil {
		return ""
	}
	return truncate(maxEventData, string(b))
}

// contextFields returns a context's fields, sorted, with nested values as JSON text.
func contextFields(raw json.RawMessage) errtrack.Pairs {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		if s := scrubJSON(raw); s != "" {
			return errtrack.Pairs{{Key: "value", Value: s}}
		}
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(errtrack.Pairs, 0, len(keys))
	for _, k := range keys {
		var val string
		switch x := m[k].(type) {
		case string:
			val = truncate(maxEventField, x)
		default:
			b, _ := json.Marshal(errtrack.ScrubValue(x))
			val = truncate(maxEventData, string(b))
		}
		if errtrack.SecretName(k) {
			val = filtered
		}
		out = append(out, errtrack.Pair{Key: k, Value: val})
	}
	return out
}
