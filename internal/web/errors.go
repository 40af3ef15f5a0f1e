package web

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/errtrack/envelope"
)

// ErrorOptions configure the error tracker's endpoints: the ingest the Sentry SDKs post to,
// and the API over projects and issues.
type ErrorOptions struct {
	// Hub ingests events and changes issues; nil serves none of the endpoints.
	Hub  *errtrack.Hub
	Gate *errtrack.Gate
	// Keys authenticates the API (not the ingest, which takes DSN keys).
	Keys   KeyAuthenticator
	Limits envelope.Limits
	// DSNBase is the scheme, host and path prefix of the DSNs the API shows, as SDKs reach
	// this server; nil means the scheme and host of each API request.
	DSNBase *url.URL
}

// routeErrors adds the Sentry ingest endpoints (DSN keys, CORS for browser SDKs) and the
// project and issue API (API keys).
func (s *server) routeErrors(handle func(pattern, name string, h http.Handler)) {
	o := s.opts.Errors
	items := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_errors_items_total",
		Help: "Envelope items and store events received from Sentry SDKs, by item type and outcome " +
			"(new, grouped, regressed, duplicate, skipped, rate_limited, rejected).",
	}, []string{"type", "outcome"})
	s.opts.Registry.MustRegister(items)
	in := &ingest{s: s, items: items}
	handle("POST /api/{project}/envelope/", "sentry.envelope", http.HandlerFunc(in.envelope))
	handle("POST /api/{project}/store/", "sentry.store", http.HandlerFunc(in.store))
	handle("OPTIONS /api/{project}/envelope/", "sentry.preflight", http.HandlerFunc(preflight))
	handle("OPTIONS /api/{project}/store/", "sentry.preflight", http.HandlerFunc(preflight))

	key := s.guard(o.Keys)
	handle("GET /api/v1/projects", "projects.list", key(apikey.ScopeRead, s.listProjects))
	handle("POST /api/v1/projects", "projects.create", key(apikey.ScopeAdmin, s.createProject))
	handle("GET /api/v1/projects/{ref}", "projects.get", key(apikey.ScopeRead, s.getProject))
	handle("PUT /api/v1/projects/{ref}/rate-limit", "projects.ratelimit", key(apikey.ScopeAdmin, s.setProjectRateLimit))
	handle("POST /api/v1/projects/{ref}/keys", "projects.keys.create", key(apikey.ScopeAdmin, s.createProjectKey))
	handle("DELETE /api/v1/projects/{ref}/keys/{key}", "projects.keys.revoke", key(apikey.ScopeAdmin, s.revokeProjectKey))
	handle("GET /api/v1/issues", "issues.list", key(apikey.ScopeRead, s.listIssues))
	handle("GET /api/v1/issues/{id}", "issues.get", key(apikey.ScopeRead, s.getIssue))
	handle("GET /api/v1/issues/{id}/events", "issues.events", key(apikey.ScopeRead, s.issueEvents))
	handle("POST /api/v1/issues/{id}/actions", "issues.action", key(apikey.ScopeWrite, s.issueAction))
}

// ingest serves the endpoints the Sentry SDKs post to.
type ingest struct {
	s     *server
	items *prometheus.CounterVec
}

// corsHeaders lets browser SDKs post from any origin: the DSN key, not the origin, is what
// admits an event, as on sentry.io.
func corsHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After")
	}
}

// preflight answers a browser's CORS preflight of an ingest endpoint.
func preflight(w http.ResponseWriter, r *http.Request) {
	corsHeaders(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers",
		"Content-Type, Content-Encoding, Authorization, X-Sentry-Auth, X-Requested-With, sentry-trace, baggage")
	h.Set("Access-Control-Max-Age", "3600")
	w.WriteHeader(http.StatusNoContent)
}

// sentryError answers as Relay does: the status, a JSON body with the detail, and the
// detail in X-Sentry-Error, which the SDKs log.
func sentryError(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("X-Sentry-Error", strings.ToValidUTF8(strings.ReplaceAll(detail, "\n", " "), "?"))
	writeJSON(w, status, map[string]string{"detail": detail})
}

// ingestStatus maps what can go wrong with one ingest request to Relay's statuses.
func ingestStatus(err error) int {
	switch {
	case errors.Is(err, envelope.ErrNoAuth), errors.Is(err, envelope.ErrBadAuth), errors.Is(err, errtrack.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errtrack.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, envelope.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, envelope.ErrUnsupportedEncoding):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, envelope.ErrMalformed), errors.Is(err, errtrack.ErrInvalid):
		return http.StatusBadRequest
	}
	return StatusOf(err)
}

// fail answers an ingest request that failed, counting the event it carried as rejected.
func (in *ingest) fail(w http.ResponseWriter, r *http.Request, err error) {
	in.items.WithLabelValues(envelope.TypeEvent, "rejected").Inc()
	status := ingestStatus(err)
	switch status {
	case 0:
		return
	case http.StatusInternalServerError:
		in.s.log.ErrorContext(r.Context(), "sentry ingest", "path", r.URL.Path, "err", err)
		err = errors.New("internal error; see the server log")
	}
	sentryError(w, status, err.Error())
}

// project reads the project ID of the ingest URL.
func (in *ingest) project(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("project"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: project %q: project IDs are positive numbers", errtrack.ErrNotFound, r.PathValue("project"))
	}
	return id, nil
}

// begin reads what both endpoints read first: the project the URL names, the credentials the
// request carries, and the body with its Content-Encoding undone, within the limits. A request
// without credentials is refused before its body is read, unless headerAuth says they may
// come in the envelope header (authErr then wraps envelope.ErrNoAuth); malformed ones always
// are.
func (in *ingest) begin(w http.ResponseWriter, r *http.Request, headerAuth bool) (id int64, auth envelope.Auth, authErr error, body []byte, err error) {
	corsHeaders(w, r)
	if id, err = in.project(r); err != nil {
		return 0, auth, nil, nil, err
	}
	if auth, authErr = envelope.ParseAuth(r); authErr != nil && (!headerAuth || !errors.Is(authErr, envelope.ErrNoAuth)) {
		return 0, auth, nil, nil, authErr
	}
	body, err = envelope.Body(r, in.s.opts.Errors.Limits)
	return id, auth, authErr, body, err
}

// envelope serves POST /api/{project}/envelope/: the event item is stored; every other item
// (transactions, sessions, attachments, client reports, types Sentry adds later) is counted
// and skipped.
func (in *ingest) envelope(w http.ResponseWriter, r *http.Request) {
	id, auth, authErr, body, err := in.begin(w, r, true)
	// Nothing keeps a reference to the body: items are parsed, and the event decoded into
	// values of its own, before this returns.
	defer envelope.Recycle(body)
	var env envelope.Envelope
	if err == nil {
		env, err = envelope.Parse(body, in.s.opts.Errors.Limits)
	}
	if err != nil {
		in.fail(w, r, err)
		return
	}
	if authErr != nil { // no credentials in the request: the envelope's dsn, as Relay reads it
		if auth, err = env.Header.Auth(); err != nil {
			in.fail(w, r, err)
			return
		}
		if auth.ProjectID != strconv.FormatInt(id, 10) {
			in.fail(w, r, fmt.Errorf("%w: the envelope's dsn names project %s, the URL project %d",
				errtrack.ErrUnauthorized, auth.ProjectID, id))
			return
		}
	}
	event, hasEvent := env.Event()
	for _, it := range env.Items {
		if !it.IsEvent() {
			in.items.WithLabelValues(itemType(it.Type), "skipped").Inc()
		}
	}
	if !hasEvent {
		// Still authenticate, so that a wrong key hears so even when it sends only sessions.
		if _, err := in.s.opts.Errors.Gate.Authenticate(r.Context(), id, auth.PublicKey, time.Now()); err != nil {
			in.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": env.Header.EventID})
		return
	}
	in.store1(w, r, id, auth, event.Payload)
}

// store serves the legacy POST /api/{project}/store/: one event, as JSON.
func (in *ingest) store(w http.ResponseWriter, r *http.Request) {
	// The legacy endpoint has no envelope header to take credentials from.
	id, auth, _, body, err := in.begin(w, r, false)
	defer envelope.Recycle(body) // as in envelope
	var payload []byte
	if err == nil {
		payload, err = envelope.ParseStore(body, in.s.opts.Errors.Limits)
	}
	if err != nil {
		in.fail(w, r, err)
		return
	}
	in.store1(w, r, id, auth, payload)
}

// store1 authenticates, admits and stores one event payload, and answers with its ID.
func (in *ingest) store1(w http.ResponseWriter, r *http.Request, projectID int64, auth envelope.Auth, payload []byte) {
	o := in.s.opts.Errors
	now := time.Now()
	p, err := o.Gate.Authenticate(r.Context(), projectID, auth.PublicKey, now)
	if err != nil {
		in.fail(w, r, err)
		return
	}
	if ok, retry := o.Gate.Admit(p, now); !ok {
		in.items.WithLabelValues(envelope.TypeEvent, "rate_limited").Inc()
		secs := strconv.Itoa(max(1, int((retry+time.Second-1)/time.Second)))
		w.Header().Set("Retry-After", secs)
		// retry_after:categories:scope:reason_code, the header the SDKs honour
		// (https://develop.sentry.dev/sdk/expected-features/rate-limiting/).
		w.Header().Set("X-Sentry-Rate-Limits", secs+":error;default:project:project_quota")
		sentryError(w, http.StatusTooManyRequests, fmt.Sprintf("project %s is over its quota of %d events a minute",
			p.Name, cmp.Or(p.RateLimit, o.Gate.DefaultRateLimit)))
		return
	}
	out, err := o.Hub.Ingest(r.Context(), p.ID, payload, clientIP(r), now)
	if err != nil {
		in.fail(w, r, err)
		return
	}
	in.items.WithLabelValues(envelope.TypeEvent, string(out.Kind)).Inc()
	writeJSON(w, http.StatusOK, map[string]string{"id": out.EventID})
}

// itemType is the label of an item type: Sentry's known types by name, anything else
// "other", so that a client cannot make new series.
func itemType(t string) string {
	switch t {
	case envelope.TypeEvent, envelope.TypeTransaction, envelope.TypeSession, envelope.TypeSessions,
		envelope.TypeAttachment, envelope.TypeClientReport, envelope.TypeCheckIn, envelope.TypeStatsd,
		envelope.TypeProfile, envelope.TypeReplayEvent, envelope.TypeReplayRecording, envelope.TypeUserReport,
		envelope.TypeFeedback, envelope.TypeLog, envelope.TypeSpan:
		return t
	}
	return "other"
}

// clientIP is the address the request came from, for a user IP the SDK left to the server.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

// projectKeyJSON is a key as the API shows it, with its DSN.
type projectKeyJSON struct {
	errtrack.ProjectKey
	DSN string `json:"dsn"`
}

func (s *server) dsnBase(r *http.Request) *url.URL { return DSNBase(s.opts.Errors.DSNBase, r) }

// DSNBase is where SDKs reach this server, for the DSNs shown: configured when set, else the
// scheme and host r came to.
func DSNBase(configured *url.URL, r *http.Request) *url.URL {
	if configured != nil {
		return configured
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: r.Host}
}

func (s *server) keysJSON(r *http.Request, keys ...errtrack.ProjectKey) []projectKeyJSON {
	out := make([]projectKeyJSON, len(keys))
	for i, k := range keys {
		out[i] = projectKeyJSON{ProjectKey: k, DSN: k.DSN(s.dsnBase(r))}
	}
	return out
}

func (s *server) errStore() errtrack.Store { return s.opts.Errors.Hub.Store() }

func (s *server) listProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := s.errStore().ListProjects(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": ps})
}

// decodeBody reads a JSON request body of at most 64 KiB into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r, 64<<10)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return nil
}

func (s *server) createProject(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name      string `json:"name"`
		RateLimit int    `json:"rateLimit"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, k, err := s.errStore().CreateProject(r.Context(), errtrack.Project{Name: req.Name, RateLimit: req.RateLimit})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"project": p, "keys": s.keysJSON(r, k)})
}

// projectRef looks up the project the path names, by ID or name.
func (s *server) projectRef(r *http.Request) (errtrack.Project, error) {
	return s.errStore().GetProject(r.Context(), r.PathValue("ref"))
}

func (s *server) getProject(w http.ResponseWriter, r *http.Request) {
	p, err := s.projectRef(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	keys, err := s.errStore().ProjectKeys(r.Context(), p.ID)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": p, "keys": s.keysJSON(r, keys...)})
}

func (s *server) setProjectRateLimit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RateLimit int `json:"rateLimit"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, err := s.projectRef(r)
	if err == nil {
		p, err = s.errStore().SetProjectRateLimit(r.Context(), p.ID, req.RateLimit)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": p})
}

func (s *server) createProjectKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Label string `json:"label"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, err := s.projectRef(r)
	var k errtrack.ProjectKey
	if err == nil {
		k, err = s.errStore().CreateProjectKey(r.Context(), p.ID, req.Label)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"key": s.keysJSON(r, k)[0]})
}

func (s *server) revokeProjectKey(w http.ResponseWriter, r *http.Request) {
	p, err := s.projectRef(r)
	var k errtrack.ProjectKey
	if err == nil {
		k, err = s.errStore().RevokeProjectKey(r.Context(), p.ID, r.PathValue("key"))
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": s.keysJSON(r, k)[0]})
}

// issueQuery reads GET /api/v1/issues' parameters: project (ID or name), environment,
// release, status and level (comma-separated lists), query (text), sort, limit, offset.
func (s *server) issueQuery(r *http.Request) (errtrack.IssueQuery, error) {
	v := r.URL.Query()
	if err := onlyParams(v, "project", "environment", "release", "status", "level", "query", "sort", "limit", "offset"); err != nil {
		return errtrack.IssueQuery{}, err
	}
	q := errtrack.IssueQuery{Environment: v.Get("environment"), Release: v.Get("release"), Text: v.Get("query"),
		Sort: errtrack.IssueSort(v.Get("sort"))}
	if ref := v.Get("project"); ref != "" {
		p, err := s.errStore().GetProject(r.Context(), ref)
		if err != nil {
			return q, err
		}
		q.ProjectID = p.ID
	}
	for _, st := range list(v["status"]) {
		if !errtrack.Status(st).Valid() {
			return q, fmt.Errorf("%w: status %q: want unresolved, resolved, resolved_in_next_release or ignored", errBadRequest, st)
		}
		q.Status = append(q.Status, errtrack.Status(st))
	}
	for _, l := range list(v["level"]) {
		q.Level = append(q.Level, errtrack.Level(l))
	}
	var err error
	if q.Limit, err = limitParam(v); err != nil {
		return q, err
	}
	if raw := v.Get("offset"); raw != "" {
		if q.Offset, err = strconv.Atoi(raw); err != nil || q.Offset < 0 {
			return q, fmt.Errorf("%w: offset %q is not 0 or a positive integer", errBadRequest, raw)
		}
	}
	return q, nil
}

// list splits comma-separated values and drops empty ones.
func list(values []string) []string {
	var out []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *server) listIssues(w http.ResponseWriter, r *http.Request) {
	q, err := s.issueQuery(r)
	var l errtrack.IssueList
	if err == nil {
		l, err = s.errStore().FindIssues(r.Context(), q)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if l.Issues == nil {
		l.Issues = []errtrack.Issue{}
	}
	writeJSON(w, http.StatusOK, l)
}

// getIssue answers one issue with its latest event, in full, and its events per release.
func (s *server) getIssue(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "issue")
	var (
		is       errtrack.Issue
		events   []errtrack.StoredEvent
		releases []errtrack.ReleaseCount
	)
	if err == nil {
		is, err = s.errStore().GetIssue(r.Context(), id)
	}
	if err == nil {
		events, err = s.errStore().IssueEvents(r.Context(), id, 1)
	}
	if err == nil {
		releases, err = s.errStore().IssueReleases(r.Context(), id)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	resp := map[string]any{"issue": is, "releases": releases}
	if len(events) > 0 {
		resp["latestEvent"] = events[0]
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) issueEvents(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "issue")
	limit := 0
	if err == nil {
		limit, err = limitParam(r.URL.Query())
	}
	var events []errtrack.StoredEvent
	if err == nil {
		events, err = s.errStore().IssueEvents(r.Context(), id, cmp.Or(limit, 20))
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if events == nil {
		events = []errtrack.StoredEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
}

// issueAction runs {"action": "resolve" | "resolve_in_next_release" | "ignore" | "reopen",
// "release": "..."} on an issue.
func (s *server) issueAction(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Action  errtrack.Action `json:"action"`
		Release string          `json:"release"`
	}
	id, err := idParam(r, "issue")
	if err == nil {
		err = decodeBody(w, r, &req)
	}
	var is errtrack.Issue
	if err == nil {
		is, err = s.opts.Errors.Hub.Act(r.Context(), id, req.Action, req.Release)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"issue": is})
}
