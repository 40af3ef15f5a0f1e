// Package web serves Ferry's HTTP surface: health and readiness probes, Prometheus metrics and the
// JSON API under /api/v1.
//
// Every handler reports failure through one function, writeError, which maps the domain's sentinel
// errors to HTTP statuses so that the same failure always gets the same answer.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/release"
)

// Check is one readiness condition: /readyz answers 200 only when every Check returns nil.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Options are the dependencies of the HTTP handler.
type Options struct {
	Logger *slog.Logger
	// Registry receives the HTTP metrics.
	Registry *prometheus.Registry
	// Gatherer is served on /metrics; nil means Registry.
	Gatherer prometheus.Gatherer
	// Ready lists the readiness checks.
	Ready []Check
	// CheckTimeout bounds each readiness check.
	CheckTimeout time.Duration
	// Releases answers the release API.
	Releases ReleaseReader
	// GitWebhook takes git providers' push events; nil when delivery is off.
	GitWebhook http.Handler
	// Notify answers the notification API; nil serves none.
	Notify Notifications
	// Incidents serves the Alertmanager webhook and the Alerta API; a nil Hub serves none.
	Incidents IncidentOptions
	// Errors serves the Sentry ingest and the project and issue API; a nil Hub serves none.
	Errors ErrorOptions
	// Keys authenticates the release and notification API by API key; nil leaves those
	// endpoints open (tests of the handlers alone).
	Keys KeyAuthenticator
	// Sessions, when set, lets a logged-in panel user call the API too, with the role of
	// the user standing for a key's scope and the CSRF token required on changes.
	Sessions *auth.Manager
	// Panel serves every path outside the API and the probes; nil serves none.
	Panel http.Handler
}

// ReleaseReader is what the release API needs from the store.
type ReleaseReader interface {
	GetRelease(ctx context.Context, id int64) (release.Release, error)
	FindReleases(ctx context.Context, f release.Filter) (release.Page, error)
	Timeline(ctx context.Context, releaseID int64, f release.TimelineFilter) (release.Timeline, error)
}

// New returns Ferry's HTTP handler.
func New(opts Options) http.Handler {
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 3 * time.Second
	}
	s := &server{opts: opts, log: opts.Logger}
	m := newMetrics(opts.Registry)

	mux := http.NewServeMux()
	handle := func(pattern, name string, h http.HandlerFunc) {
		mux.Handle(pattern, m.instrument(name, h))
	}
	handle("GET /healthz", "healthz", s.healthz)
	handle("GET /readyz", "readyz", s.readyz)
	if opts.Gatherer == nil {
		opts.Gatherer = opts.Registry
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		Registry:          opts.Registry,
		EnableOpenMetrics: true,
	}))
	key := func(scope apikey.Scope, h http.HandlerFunc) http.Handler { return h }
	if opts.Keys != nil {
		key = s.guard(opts.Keys)
	}
	keyed := func(pattern, name string, scope apikey.Scope, h http.HandlerFunc) {
		mux.Handle(pattern, m.instrument(name, key(scope, h)))
	}
	keyed("GET /api/v1/releases", "releases.list", apikey.ScopeRead, s.listReleases)
	keyed("GET /api/v1/releases/{id}", "releases.get", apikey.ScopeRead, s.getRelease)
	keyed("GET /api/v1/releases/{id}/timeline", "releases.timeline", apikey.ScopeRead, s.releaseTimeline)
	if opts.Notify != nil {
		keyed("GET /api/v1/notifications", "notifications.list", apikey.ScopeRead, s.listNotifications)
		keyed("GET /api/v1/notifications/channels", "notifications.channels", apikey.ScopeRead, s.listChannels)
		keyed("GET /api/v1/notifications/{id}", "notifications.get", apikey.ScopeRead, s.getNotification)
		keyed("POST /api/v1/notifications/test", "notifications.test", apikey.ScopeWrite, s.testNotification)
	}
	if opts.Incidents.Hub != nil {
		s.routeIncidents(func(pattern, name string, h http.Handler) { mux.Handle(pattern, m.instrument(name, h)) })
	}
	if opts.Errors.Hub != nil {
		s.routeErrors(func(pattern, name string, h http.Handler) { mux.Handle(pattern, m.instrument(name, h)) })
	}
	if opts.GitWebhook != nil {
		mux.Handle("/api/v1/webhooks/git", m.instrument("webhooks.git", opts.GitWebhook))
	}
	handle("/api/", "api.unknown", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, fmt.Errorf("%w: no API route %s %s", errNoRoute, r.Method, r.URL.Path))
	})
	if opts.Panel != nil {
		mux.Handle("/", opts.Panel)
	}
	return mux
}

// guard returns the middleware that authenticates an API route by keys or a session.
func (s *server) guard(keys KeyAuthenticator) func(apikey.Scope, http.HandlerFunc) http.Handler {
	g := guard{log: s.log, keys: keys, sessions: s.opts.Sessions}
	return func(scope apikey.Scope, h http.HandlerFunc) http.Handler { return g.require(scope, h) }
}

type server struct {
	opts Options
	log  *slog.Logger
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers in the format of kube-apiserver's /readyz?verbose: one [+] or [-] line per check.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	ready := true
	for _, c := range s.opts.Ready {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.CheckTimeout)
		err := c.Fn(ctx)
		cancel()
		if err != nil {
			ready = false
			fmt.Fprintf(&b, "[-]%s failed: %v\n", c.Name, err)
			continue
		}
		fmt.Fprintf(&b, "[+]%s ok\n", c.Name)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if ready {
		b.WriteString("ready\n")
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
		b.WriteString("not ready\n")
	}
	_, _ = w.Write([]byte(b.String()))
}

// errNoRoute and errBadRequest are this package's own failures; the domain's come from release.
var (
	errNoRoute    = errors.New("not found")
	errBadRequest = errors.New("bad request")
)

// apiError is the JSON body of every failed API request.
type apiError struct {
	Error struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError is the single place that maps an error to an HTTP status. Unexpected errors are
// logged and answered with a generic message, so internals never reach a client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := StatusOf(err)
	switch status {
	case 0:
		return // the client went away; nobody reads the answer
	case http.StatusInternalServerError:
		log.ErrorContext(r.Context(), "api request", "method", r.Method, "path", r.URL.Path, "err", err)
		err = errors.New("internal error; see the server log")
	}
	var body apiError
	body.Error.Status, body.Error.Message = status, err.Error()
	writeJSON(w, status, body)
}

// StatusOf is the HTTP status of an error: the one mapping of every package's sentinel
// errors, for both of the API's error formats and the panel's pages. Zero means the client
// went away.
func StatusOf(err error) int {
	if status := notifyStatus(err); status != 0 {
		return status
	}
	switch {
	case errors.Is(err, release.ErrNotFound), errors.Is(err, incident.ErrNotFound), errors.Is(err, errtrack.ErrNotFound),
		errors.Is(err, auth.ErrNotFound), errors.Is(err, apikey.ErrNotFound), errors.Is(err, errNoRoute):
		return http.StatusNotFound
	case errors.Is(err, release.ErrInvalid), errors.Is(err, incident.ErrInvalid), errors.Is(err, errtrack.ErrInvalid),
		errors.Is(err, auth.ErrInvalid), errors.Is(err, apikey.ErrInvalid), errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, release.ErrConflict), errors.Is(err, incident.ErrConflict), errors.Is(err, errtrack.ErrConflict),
		errors.Is(err, auth.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, apikey.ErrUnauthorized), errors.Is(err, errtrack.ErrUnauthorized), errors.Is(err, auth.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, apikey.ErrForbidden), errors.Is(err, auth.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, context.Canceled):
		return 0
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
