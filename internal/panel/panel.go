// Package panel serves Ferry's web panel: server-rendered pages (html/template) for the
// applications, their releases and timelines, the incident board, the error tracker and the
// settings, with a little plain JavaScript for live updates over server-sent events. Every
// asset is embedded, so the panel needs no CDN and no Node toolchain.
//
// Every page needs a login (internal/auth); every state change needs the session's CSRF
// token and a role that allows it, checked here on the server whatever the page shows.
package panel

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/web"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options are the panel's dependencies. A nil source hides its section.
type Options struct {
	Logger *slog.Logger
	// Auth logs users in and checks their sessions, CSRF tokens and roles.
	Auth *auth.Manager
	// Apps lists and changes the Applications; nil when delivery is off.
	Apps Apps
	// Releases reads releases and their timelines.
	Releases web.ReleaseReader
	// Live tells open pages that their lists changed; nil turns live updates off.
	Live *Broker
	// Incidents, Errors and Settings feed those sections.
	Incidents IncidentOptions
	Errors    ErrorOptions
	Settings  SettingsOptions
}

// Panel is the panel's HTTP handler.
type Panel struct {
	opts  Options
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *routes
	// logins brakes password guessing: 5 failures of a name in 5 minutes hold it back.
	logins *auth.LoginLimiter
}

// routes is the panel's ServeMux, which remembers its patterns so that a test can walk
// every state-changing route and prove each refuses a request without a session or token.
type routes struct {
	*http.ServeMux
	patterns []string
}

func (m *routes) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routes) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// New parses the embedded templates and returns the panel.
func New(opts Options) (*Panel, error) {
	if opts.Auth == nil {
		return nil, errors.New("panel: no session manager")
	}
	p := &Panel{opts: opts, log: opts.Logger, mux: &routes{ServeMux: http.NewServeMux()},
		logins: auth.NewLoginLimiter(5, 5*time.Minute)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if p.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(assets, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	p.mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The assets change only with the binary; a day of caching is safe with the
		// version in their URLs.
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	}))
	p.mux.HandleFunc("GET /login", p.loginPage)
	p.mux.HandleFunc("POST /login", p.login)
	p.mux.Handle("POST /logout", p.action(auth.RoleViewer, p.logout))
	p.mux.Handle("GET /{$}", p.view(auth.RoleViewer, func(w http.ResponseWriter, r *http.Request) error {
		http.Redirect(w, r, p.home(), http.StatusSeeOther)
		return nil
	}))
	if opts.Live != nil {
		p.mux.Handle("GET /events", p.view(auth.RoleViewer, opts.Live.serve))
	}
	p.routeApps()
	p.routeIncidents()
	p.routeErrors()
	p.routeSettings()
	p.mux.Handle("/", p.view(auth.RoleViewer, func(http.ResponseWriter, *http.Request) error {
		return fmt.Errorf("%w: no page here", errNotFound)
	}))
	return p, nil
}

// errNotFound is a page that does not exist, errBadRequest a form that makes no sense, and
// errConflict an action the current state forbids.
var (
	errNotFound   = fmt.Errorf("%w", auth.ErrNotFound)
	errBadRequest = fmt.Errorf("%w", auth.ErrInvalid)
	errConflict   = fmt.Errorf("%w", auth.ErrConflict)
)

func (p *Panel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The pages embed nothing from elsewhere and are framed by nobody.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	p.mux.ServeHTTP(w, r)
}

// home is the first page after login.
func (p *Panel) home() string {
	switch {
	case p.opts.Apps != nil:
		return "/apps"
	case p.opts.Incidents.Hub != nil:
		return "/incidents"
	case p.opts.Errors.Hub != nil:
		return "/issues"
	}
	return "/settings"
}

// handlerFunc is a page or action handler; a returned error is rendered as an error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// view serves a page to users with role want or stronger. A request without a live session
// is sent to the login page, and comes back after it.
func (p *Panel) view(want auth.Role, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := p.opts.Auth.Authorize(r, want)
		if errors.Is(err, auth.ErrUnauthorized) && r.Method == http.MethodGet && r.Header.Get(liveHeader) == "" {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			p.fail(w, r, err)
		}
	})
}

// action serves a state change (a POST form) to users with role want or stronger, with the
// session's CSRF token. The handler redirects, so that reloading the page repeats nothing.
func (p *Panel) action(want auth.Role, h handlerFunc) http.Handler {
	return p.view(want, func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodPost {
			return fmt.Errorf("%w: %s needs POST", errBadRequest, r.URL.Path)
		}
		return h(w, r)
	})
}

// fail renders err as an error page with the status web.StatusOf gives it. Unexpected
// errors are logged and shown as a generic message.
func (p *Panel) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := web.StatusOf(err)
	switch status {
	case 0:
		return
	case http.StatusInternalServerError:
		p.log.ErrorContext(r.Context(), "panel request", "method", r.Method, "path", r.URL.Path, "err", err)
		err = errors.New("internal error; see the server log")
	}
	p.renderStatus(w, r, status, "error", View{Title: http.StatusText(status), Data: errorPage{Status: status, Message: err.Error()}})
}

type errorPage struct {
	Status  int
	Message string
}

// redirectBack ends an action: to the form's "next" field when it is a path on this
// server, else to fallback.
func redirectBack(w http.ResponseWriter, r *http.Request, fallback string) error {
	http.Redirect(w, r, safeNext(r.PostFormValue("next"), fallback), http.StatusSeeOther)
	return nil
}

// safeNext returns next if it is a local path ("/x", not "//host" or "/\host"), else
// fallback: redirects never leave the panel.
func safeNext(next, fallback string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, `/\`) {
		return fallback
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return fallback
	}
	return next
}

// View is what a page template gets: the page's own Data and the frame around it.
type View struct {
	Title string
	// Nav is the section the page belongs to, highlighted in the menu.
	Nav string
	// Live is the topic (apps, alerts, issues) whose changes reload the page's live part.
	Live string
	Data any

	User  auth.User
	CSRF  string
	Path  string
	Query url.Values
	// Sections says which menu entries exist.
	Sections sections
}

type sections struct{ Apps, Incidents, Errors bool }

// liveHeader is sent by panel.js when it reloads a page's live part: the answer is only
// the template's "live" block.
const liveHeader = "X-Ferry-Live"

// render executes the page template name with v completed by the request's frame, and
// answers 200. The page is rendered into a buffer first, so a failing template sends a
// clean error instead of half a page.
func (p *Panel) render(w http.ResponseWriter, r *http.Request, name string, v View) {
	p.renderStatus(w, r, http.StatusOK, name, v)
}

// renderStatus is render with another status.
func (p *Panel) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, v View) {
	t, ok := p.pages[name]
	if !ok {
		p.log.Error("panel: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v.User, _ = auth.UserFrom(r.Context())
	v.CSRF = auth.CSRFTokenFrom(r.Context())
	v.Path, v.Query = r.URL.Path, r.URL.Query()
	v.Sections = sections{Apps: p.opts.Apps != nil, Incidents: p.opts.Incidents.Hub != nil, Errors: p.opts.Errors.Hub != nil}
	root := "layout"
	if r.Header.Get(liveHeader) != "" && t.Lookup("live") != nil {
		root = "live"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, root, v); err != nil {
		p.log.ErrorContext(r.Context(), "panel: render", "template", name, "err", err)
		http.Error(w, "internal error; see the server log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// parsePages builds one template set per page: the layout and the shared partials with
// the page's own file, which defines "content" and, for live lists, "live".
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/_*.html")
	if err != nil {
		return nil, fmt.Errorf("panel: templates: %w", err)
	}
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, f)
		if err != nil {
			return nil, fmt.Errorf("panel: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}
