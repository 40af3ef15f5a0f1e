package panel

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/web"
)

// APIKeys is what the settings page needs to manage API keys. *store.DB is one.
type APIKeys interface {
	CreateAPIKey(ctx context.Context, name string, scopes []apikey.Scope, hash []byte, prefix string, expires *time.Time) (apikey.Key, error)
	ListAPIKeys(ctx context.Context) ([]apikey.Key, error)
	RevokeAPIKey(ctx context.Context, ref string) (apikey.Key, error)
}

// SettingsOptions feed the settings page: channels (with their test), projects and DSNs
// (from ErrorOptions' hub), and API keys.
type SettingsOptions struct {
	Notify web.Notifications
	Keys   APIKeys
	// DSNBase is the scheme, host and path of the DSNs shown; nil means the request's.
	DSNBase *url.URL
}

// channelTestTimeout bounds how long a channel test waits for the message's outcome, as
// the API's test does; a message still pending then is reported as pending.
const channelTestTimeout = 30 * time.Second

// maxKeyDays is the longest expiry an API key may be given from the panel, ten years.
const maxKeyDays = 3650

// routeSettings adds the settings page and its actions, each for the sources the server
// has. The whole section is for admins: it shows DSNs and manages credentials.
func (p *Panel) routeSettings() {
	s := p.opts.Settings
	p.mux.Handle("GET /settings", p.view(auth.RoleAdmin, p.settingsPage))
	if s.Notify != nil {
		p.mux.Handle("POST /settings/channels/test", p.action(auth.RoleAdmin, p.channelTest))
	}
	if p.opts.Errors.Hub != nil {
		p.mux.Handle("POST /settings/projects", p.action(auth.RoleAdmin, p.projectCreate))
		p.mux.Handle("POST /settings/projects/{id}/keys", p.action(auth.RoleAdmin, p.projectKeyCreate))
		p.mux.Handle("POST /settings/projects/{id}/keys/{key}/revoke", p.action(auth.RoleAdmin, p.projectKeyRevoke))
	}
	if s.Keys != nil {
		p.mux.Handle("POST /settings/apikeys", p.action(auth.RoleAdmin, p.apiKeyCreate))
		p.mux.Handle("POST /settings/apikeys/{ref}/revoke", p.action(auth.RoleAdmin, p.apiKeyRevoke))
	}
}

type settingsPage struct {
	// HasChannels, HasProjects and HasKeys say which sections the server has.
	HasChannels, HasProjects, HasKeys bool
	// Channels are names and types only: the channels' configuration holds their secrets.
	Channels []notify.ChannelInfo
	Projects []projectView
	APIKeys  []apikey.Key
	Scopes   []apikey.Scope
	Flash    *settingsFlash
	// NewKey is the API key just created, with its secret, shown on this one answer.
	NewKey *newAPIKey
	Now    time.Time
}

type settingsFlash struct {
	// Class is ok, error or empty (neutral).
	Class, Text, Detail string
}

type newAPIKey struct {
	Key    apikey.Key
	Secret string
}

type projectView struct {
	errtrack.Project
	// Keys are the live keys with their DSNs; Revoked counts the others.
	Keys    []projectKeyView
	Revoked int
}

type projectKeyView struct {
	errtrack.ProjectKey
	DSN string
}

// settingsPage is GET /settings. After a channel test it shows the outcome the redirect
// carries: ?tested=CHANNEL&result=STATUS&notification=ID.
func (p *Panel) settingsPage(w http.ResponseWriter, r *http.Request) error {
	page, err := p.settingsData(r)
	if err != nil {
		return err
	}
	page.Flash = p.testFlash(r, page.Channels)
	p.render(w, r, "settings", View{Title: "Settings", Nav: "settings", Data: page})
	return nil
}

func (p *Panel) settingsData(r *http.Request) (settingsPage, error) {
	ctx := r.Context()
	s := p.opts.Settings
	page := settingsPage{HasChannels: s.Notify != nil, HasProjects: p.opts.Errors.Hub != nil, HasKeys: s.Keys != nil,
		Scopes: []apikey.Scope{apikey.ScopeRead, apikey.ScopeWrite, apikey.ScopeAdmin}, Now: time.Now()}
	if page.HasChannels {
		page.Channels = s.Notify.Channels()
	}
	if page.HasProjects {
		store := p.errStore()
		projects, err := store.ListProjects(ctx)
		if err != nil {
			return page, err
		}
		base := web.DSNBase(p.opts.Settings.DSNBase, r)
		for _, pr := range projects {
			keys, err := store.ProjectKeys(ctx, pr.ID)
			if err != nil {
				return page, err
			}
			v := projectView{Project: pr}
			for _, k := range keys {
				if k.RevokedAt != nil {
					v.Revoked++
					continue
				}
				v.Keys = append(v.Keys, projectKeyView{ProjectKey: k, DSN: k.DSN(base)})
			}
			page.Projects = append(page.Projects, v)
		}
	}
	if page.HasKeys {
		keys, err := s.Keys.ListAPIKeys(ctx)
		if err != nil {
			return page, err
		}
		// Newest first: the key just made or revoked is at the top.
		slices.Reverse(keys)
		page.APIKeys = keys
	}
	return page, nil
}

// testFlash is the outcome of a channel test as the redirect's query reports it. The query
// is anyone's to write, so only a configured channel and a known status are shown, and the
// detail comes from the store: the test notification's error, which the receiver redacted
// and the page shortens.
func (p *Panel) testFlash(r *http.Request, channels []notify.ChannelInfo) *settingsFlash {
	q := r.URL.Query()
	channel := q.Get("tested")
	if channel == "" || !slices.ContainsFunc(channels, func(c notify.ChannelInfo) bool { return c.Name == channel }) {
		return nil
	}
	f := &settingsFlash{}
	switch notify.Status(q.Get("result")) {
	case notify.StatusSent:
		f.Class, f.Text = "ok", "Test message sent to "+channel+"."
	case notify.StatusPending:
		f.Text = "The test message to " + channel + " is still pending: the channel is being retried."
	case notify.StatusFailed:
		f.Class, f.Text = "error", "The test message to "+channel+" failed."
	default:
		return nil
	}
	if id, err := strconv.ParseInt(q.Get("notification"), 10, 64); err == nil && id > 0 {
		n, err := p.opts.Settings.Notify.Get(r.Context(), id)
		if err == nil && n.Channel == channel && n.Event.Type == notify.EventTest && n.LastError != "" {
			f.Detail = truncate(300, n.LastError)
		}
	}
	return f
}

// channelTest is POST /settings/channels/test: a test message to the form's channel, sent
// through the outbox; the page it redirects to says how it went.
func (p *Panel) channelTest(w http.ResponseWriter, r *http.Request) error {
	channel := r.PostFormValue("channel")
	if channel == "" {
		return fmt.Errorf("%w: no channel", errBadRequest)
	}
	u, _ := auth.UserFrom(r.Context())
	ctx, cancel := context.WithTimeout(r.Context(), channelTestTimeout)
	defer cancel()
	n, err := p.opts.Settings.Notify.Test(ctx, channel, u.Name)
	if err != nil {
		return err
	}
	q := url.Values{"tested": {channel}, "result": {string(n.Status)}}
	if n.ID > 0 {
		q.Set("notification", strconv.FormatInt(n.ID, 10))
	}
	http.Redirect(w, r, "/settings?"+q.Encode()+"#channels", http.StatusSeeOther)
	return nil
}

// projectCreate is POST /settings/projects: name and an optional rate limit (events a
// minute); the project comes with its first key.
func (p *Panel) projectCreate(w http.ResponseWriter, r *http.Request) error {
	pr := errtrack.Project{Name: strings.TrimSpace(r.PostFormValue("name"))}
	if raw := strings.TrimSpace(r.PostFormValue("rate_limit")); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: rate limit %q is not 0 or a positive number", errBadRequest, raw)
		}
		pr.RateLimit = n
	}
	if _, _, err := p.errStore().CreateProject(r.Context(), pr); err != nil {
		return err
	}
	return redirectBack(w, r, "/settings#projects")
}

func (p *Panel) settingsProject(r *http.Request) (errtrack.Project, error) {
	return p.errStore().GetProject(r.Context(), r.PathValue("id"))
}

// projectKeyCreate is POST /settings/projects/{id}/keys: a new DSN key beside the others,
// to rotate one.
func (p *Panel) projectKeyCreate(w http.ResponseWriter, r *http.Request) error {
	pr, err := p.settingsProject(r)
	if err != nil {
		return err
	}
	if _, err := p.errStore().CreateProjectKey(r.Context(), pr.ID, strings.TrimSpace(r.PostFormValue("label"))); err != nil {
		return err
	}
	return redirectBack(w, r, "/settings#projects")
}

// projectKeyRevoke is POST /settings/projects/{id}/keys/{key}/revoke: events sent with
// the key are refused from now on.
func (p *Panel) projectKeyRevoke(w http.ResponseWriter, r *http.Request) error {
	pr, err := p.settingsProject(r)
	if err != nil {
		return err
	}
	if _, err := p.errStore().RevokeProjectKey(r.Context(), pr.ID, r.PathValue("key")); err != nil {
		return err
	}
	return redirectBack(w, r, "/settings#projects")
}

// apiKeyCreate is POST /settings/apikeys: name, scope and expiry in days (empty or 0:
// never). It answers the settings page itself, not a redirect, with the new secret: Ferry
// keeps only its hash, so this answer is the one place it is ever shown, and it must not
// end up in a URL, a history entry or a cache.
func (p *Panel) apiKeyCreate(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	scope, err := apikey.ParseScope(r.PostFormValue("scope"))
	if err != nil {
		return err
	}
	var expires *time.Time
	if raw := strings.TrimSpace(r.PostFormValue("expires_days")); raw != "" {
		days, err := strconv.Atoi(raw)
		if err != nil || days < 0 || days > maxKeyDays {
			return fmt.Errorf("%w: expiry %q: want a number of days from 0 (never) to %d", errBadRequest, raw, maxKeyDays)
		}
		if days > 0 {
			t := time.Now().AddDate(0, 0, days)
			expires = &t
		}
	}
	secret, hash, prefix := apikey.Generate()
	k, err := p.opts.Settings.Keys.CreateAPIKey(r.Context(), name, []apikey.Scope{scope}, hash, prefix, expires)
	if err != nil {
		return err
	}
	u, _ := auth.UserFrom(r.Context())
	p.log.InfoContext(r.Context(), "panel: API key created", "user", u.Name, "key", k.ID, "prefix", k.Prefix,
		"scope", scope)
	page, err := p.settingsData(r)
	if err != nil {
		return err
	}
	page.NewKey = &newAPIKey{Key: k, Secret: secret}
	// render answers with Cache-Control: no-store.
	p.render(w, r, "settings", View{Title: "Settings", Nav: "settings", Data: page})
	return nil
}

// apiKeyRevoke is POST /settings/apikeys/{ref}/revoke, ref an ID or a prefix.
func (p *Panel) apiKeyRevoke(w http.ResponseWriter, r *http.Request) error {
	k, err := p.opts.Settings.Keys.RevokeAPIKey(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	u, _ := auth.UserFrom(r.Context())
	p.log.InfoContext(r.Context(), "panel: API key revoked", "user", u.Name, "key", k.ID, "prefix", k.Prefix)
	return redirectBack(w, r, "/settings#apikeys")
}
