package panel

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/delivery/source"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

// Apps is what the panel needs from the cluster: the Applications, from the delivery
// engine's cache, their live objects, a dry-run diff, and merge patches for the actions.
type Apps interface {
	List(ctx context.Context) ([]v1alpha1.Application, error)
	// Get returns one Application, or an error wrapping auth.ErrNotFound-compatible
	// not-found (web.StatusOf maps it to 404).
	Get(ctx context.Context, namespace, name string) (*v1alpha1.Application, error)
	// Patch applies a JSON merge patch to an Application.
	Patch(ctx context.Context, namespace, name string, patch map[string]any) error
	// Objects returns the live state of the Application's objects as a tree.
	Objects(ctx context.Context, app *v1alpha1.Application) ([]Object, error)
	// Diff is what a sync now would change, from a server-side dry-run.
	Diff(ctx context.Context, app *v1alpha1.Application) (string, []delivery.ObjectDiff, error)
}

// Object is one live object of an Application, with what it owns (a Deployment's Pods).
type Object struct {
	Kind, Namespace, Name string
	Health                v1alpha1.HealthState
	Message               string
	Children              []Object
}

// appsPageSize is the number of Applications a list page shows.
const appsPageSize = 50

func (p *Panel) routeApps() {
	if p.opts.Apps == nil {
		return
	}
	p.mux.Handle("GET /apps", p.view(auth.RoleViewer, p.appList))
	p.mux.Handle("GET /apps/{namespace}/{name}", p.view(auth.RoleViewer, p.appPage))
	p.mux.Handle("GET /apps/{namespace}/{name}/diff", p.view(auth.RoleViewer, p.appDiff))
	p.mux.Handle("GET /apps/{namespace}/{name}/timeline", p.view(auth.RoleViewer, p.appTimeline))
	p.mux.Handle("POST /apps/{namespace}/{name}/sync", p.action(auth.RoleOperator, p.appSync))
	p.mux.Handle("POST /apps/{namespace}/{name}/rollback", p.action(auth.RoleOperator, p.appRollback))
	p.mux.Handle("POST /apps/{namespace}/{name}/resume", p.action(auth.RoleOperator, p.appResume))
	if p.opts.Releases != nil {
		p.mux.Handle("GET /releases/{id}", p.view(auth.RoleViewer, p.releasePage))
	}
}

// appRow is one line of the Applications list.
type appRow struct {
	Namespace, Name, Environment string
	Sync                         v1alpha1.SyncState
	Health                       v1alpha1.HealthState
	Revision                     string
	// RepoURL is the source repository without the credentials a URL may carry.
	RepoURL string
	// CommitURL is the revision's page on the git host, when the repository URL names one.
	CommitURL         string
	Suspended, Pinned bool
	Last              *v1alpha1.HistoryEntry
	Ready             string
}

func rowOf(a *v1alpha1.Application) appRow {
	r := appRow{Namespace: a.Namespace, Name: a.Name, Environment: environment(a), Sync: a.Status.Sync.Status,
		Health: a.Status.Health.Status, Revision: a.Status.Sync.Revision, RepoURL: source.RedactURL(a.Spec.Source.RepoURL),
		Suspended: a.Spec.Suspend, Pinned: a.Annotations[v1alpha1.AnnotationRollbackTo] != ""}
	r.CommitURL = commitURL(a.Spec.Source.RepoURL, r.Revision)
	if n := len(a.Status.History); n > 0 {
		r.Last = &a.Status.History[n-1]
	}
	for _, c := range a.Status.Conditions {
		if c.Type == "Ready" && c.Status != metav1.ConditionTrue {
			r.Ready = c.Reason + ": " + c.Message
		}
	}
	return r
}

// commitURL is the web page of commit sha in the repository cloned from repoURL, for the
// HTTPS and SSH forms the big git hosts share (host/owner/repo[.git]), where /commit/SHA
// shows the commit (GitHub, Gitea, Forgejo; GitLab redirects it). Other URLs, such as
// git:// or plain HTTP, get no link: there is no page to guess.
func commitURL(repoURL, sha string) string {
	if len(sha) != 40 || strings.Trim(sha, "0123456789abcdef") != "" {
		return ""
	}
	var host, path string
	switch u, err := url.Parse(repoURL); {
	case err == nil && (u.Scheme == "https" || u.Scheme == "ssh") && u.Hostname() != "":
		host, path = u.Hostname(), u.Path
		if u.Scheme == "https" && u.Port() != "" {
			host = u.Host
		}
	case err != nil || u.Scheme == "":
		// scp-like SSH: git@github.com:owner/repo.git
		at := strings.LastIndex(repoURL, "@")
		h, p, ok := strings.Cut(repoURL[at+1:], ":")
		if !ok || h == "" || strings.Contains(h, "/") {
			return ""
		}
		host, path = h, "/"+p
	default:
		return ""
	}
	path = strings.TrimSuffix(strings.TrimSuffix(path, "/"), ".git")
	if strings.Count(path, "/") < 2 {
		return ""
	}
	return (&url.URL{Scheme: "https", Host: host, Path: path + "/commit/" + sha}).String()
}

// environment is the Application's environment as releases name it.
func environment(a *v1alpha1.Application) string {
	return cmp.Or(a.Spec.Environment, a.Spec.Destination.Namespace)
}

type appList struct {
	Rows  []appRow
	Pager Pager
	// Environments lists every environment, for the filter.
	Environments []string
	Counts       map[string]int
}

// appList is GET /apps: filter by q (name, namespace or repository), env, sync and
// health; sort by name, env, sync, health or deployed (newest first); 50 a page.
func (p *Panel) appList(w http.ResponseWriter, r *http.Request) error {
	apps, err := p.opts.Apps.List(r.Context())
	if err != nil {
		return err
	}
	q := r.URL.Query()
	text, env := strings.ToLower(q.Get("q")), q.Get("env")
	syncF, healthF := q.Get("sync"), q.Get("health")
	envs := map[string]bool{}
	rows := make([]appRow, 0, len(apps))
	counts := map[string]int{}
	for i := range apps {
		row := rowOf(&apps[i])
		envs[row.Environment] = true
		if text != "" && !strings.Contains(strings.ToLower(row.Namespace+"/"+row.Name+" "+row.RepoURL), text) ||
			env != "" && row.Environment != env || syncF != "" && string(row.Sync) != syncF ||
			healthF != "" && string(row.Health) != healthF {
			continue
		}
		counts[string(row.Health)]++
		rows = append(rows, row)
	}
	sortApps(rows, q.Get("sort"))
	page := appList{Pager: newPager(q, appsPageSize, len(rows)), Counts: counts}
	from := min((page.Pager.Page-1)*appsPageSize, len(rows))
	page.Rows = rows[from:min(from+appsPageSize, len(rows))]
	for e := range envs {
		page.Environments = append(page.Environments, e)
	}
	slices.Sort(page.Environments)
	p.render(w, r, "apps", View{Title: "Applications", Nav: "apps", Live: TopicApps, Data: page})
	return nil
}

func sortApps(rows []appRow, by string) {
	deployed := func(r appRow) time.Time {
		if r.Last == nil {
			return time.Time{}
		}
		return r.Last.DeployedAt.Time
	}
	slices.SortStableFunc(rows, func(a, b appRow) int {
		var c int
		switch by {
		case "env":
			c = cmp.Compare(a.Environment, b.Environment)
		case "sync":
			c = cmp.Compare(a.Sync, b.Sync)
		case "health":
			c = cmp.Compare(healthOrder(b.Health), healthOrder(a.Health)) // worst first
		case "deployed":
			c = deployed(b).Compare(deployed(a))
		}
		return cmp.Or(c, cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name))
	})
}

func healthOrder(h v1alpha1.HealthState) int {
	return slices.Index([]v1alpha1.HealthState{v1alpha1.HealthHealthy, v1alpha1.HealthSuspended,
		v1alpha1.HealthProgressing, v1alpha1.HealthUnknown, v1alpha1.HealthMissing, v1alpha1.HealthDegraded}, h)
}

type appPage struct {
	App     *v1alpha1.Application
	Row     appRow
	Objects []Object
	// ObjectsError says why the live objects could not be read; the page shows the rest.
	ObjectsError string
	History      []v1alpha1.HistoryEntry
	Releases     []release.Release
	CanOperate   bool
}

func (p *Panel) load(r *http.Request) (*v1alpha1.Application, error) {
	return p.opts.Apps.Get(r.Context(), r.PathValue("namespace"), r.PathValue("name"))
}

func (p *Panel) appPage(w http.ResponseWriter, r *http.Request) error {
	app, err := p.load(r)
	if err != nil {
		return err
	}
	u, _ := auth.UserFrom(r.Context())
	page := appPage{App: app, Row: rowOf(app), CanOperate: u.Role.Allows(auth.RoleOperator)}
	if page.Objects, err = p.opts.Apps.Objects(r.Context(), app); err != nil {
		page.ObjectsError = err.Error()
	}
	page.History = delivery.HistoryNewestFirst(app)
	if p.opts.Releases != nil {
		rels, err := p.opts.Releases.FindReleases(r.Context(), release.Filter{Application: app.Name,
			Environment: environment(app), Limit: 20})
		if err != nil {
			return err
		}
		page.Releases = rels.Releases
	}
	p.render(w, r, "app", View{Title: app.Name, Nav: "apps", Live: TopicApps, Data: page})
	return nil
}

type diffPage struct {
	App      *v1alpha1.Application
	Revision string
	Diffs    []diffText
	Error    string
}

type diffText struct {
	Subject, Action string
	Lines           []diffLine
}

type diffLine struct{ Class, Text string }

// appDiff is GET /apps/{ns}/{name}/diff: what a sync now would change, from a dry-run.
// Secret values are masked by the delivery engine before they reach the page.
func (p *Panel) appDiff(w http.ResponseWriter, r *http.Request) error {
	app, err := p.load(r)
	if err != nil {
		return err
	}
	page := diffPage{App: app}
	rev, diffs, err := p.opts.Apps.Diff(r.Context(), app)
	page.Revision = rev
	if err != nil {
		page.Error = err.Error()
	}
	for _, d := range diffs {
		text, err := d.Unified()
		if err != nil {
			return err
		}
		dt := diffText{Subject: d.Subject, Action: d.Action}
		for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			class := ""
			switch {
			case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
				class = "file"
			case strings.HasPrefix(l, "+"):
				class = "add"
			case strings.HasPrefix(l, "-"):
				class = "del"
			case strings.HasPrefix(l, "@@"):
				class = "hunk"
			}
			dt.Lines = append(dt.Lines, diffLine{Class: class, Text: l})
		}
		page.Diffs = append(page.Diffs, dt)
	}
	p.render(w, r, "diff", View{Title: "Diff " + app.Name, Nav: "apps", Data: page})
	return nil
}

func (p *Panel) appURL(r *http.Request) string {
	return "/apps/" + url.PathEscape(r.PathValue("namespace")) + "/" + url.PathEscape(r.PathValue("name"))
}

// appSync asks the delivery engine for a sync now, as `ferry app sync` does, and refuses a
// suspended Application as it does.
func (p *Panel) appSync(w http.ResponseWriter, r *http.Request) error {
	app, err := p.load(r)
	if err != nil {
		return err
	}
	if app.Spec.Suspend {
		return fmt.Errorf("%w: application %s %w; resume it first", errConflict, app.Name, delivery.ErrSuspended)
	}
	if err := p.opts.Apps.Patch(r.Context(), app.Namespace, app.Name, delivery.SyncPatch(delivery.SyncRequest())); err != nil {
		return err
	}
	return redirectBack(w, r, p.appURL(r))
}

// appRollback pins the Application to the revision of a successful history entry, as
// `ferry app rollback NAME ID` does.
func (p *Panel) appRollback(w http.ResponseWriter, r *http.Request) error {
	app, err := p.load(r)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PostFormValue("history"), 10, 64)
	if err != nil || id < 1 {
		return fmt.Errorf("%w: history entry %q is not a positive number", errBadRequest, r.PostFormValue("history"))
	}
	target, err := delivery.RollbackTarget(app, id)
	if err != nil {
		return fmt.Errorf("%w: application %s: %w", errConflict, app.Name, err)
	}
	err = p.opts.Apps.Patch(r.Context(), app.Namespace, app.Name, delivery.RollbackPatch(target.Revision, delivery.SyncRequest()))
	if err != nil {
		return err
	}
	return redirectBack(w, r, p.appURL(r))
}

// appResume resumes a suspended Application and ends a rollback pin, as `ferry app resume`.
func (p *Panel) appResume(w http.ResponseWriter, r *http.Request) error {
	app, err := p.load(r)
	if err != nil {
		return err
	}
	if err := p.opts.Apps.Patch(r.Context(), app.Namespace, app.Name, delivery.ResumePatch()); err != nil {
		return err
	}
	return redirectBack(w, r, p.appURL(r))
}

// entry is one line of a timeline: a release event or a notification sent for it.
type entry struct {
	Time      time.Time
	Kind      string // deploy, alert, error, notify, other: the line's colour
	Type      string
	Summary   string
	Link      string
	ReleaseID int64
	Release   string
}

type timelinePage struct {
	Release  *release.Release
	App      *v1alpha1.Application
	Releases []release.Release
	Entries  []entry
}

// maxTimeline bounds the entries one timeline page reads per release.
const maxTimeline = 500

// releasePage is GET /releases/{id}: the release and, in time order, its deploy steps, the
// alerts attached to it, the error issues first seen in it, and the notifications sent.
func (p *Panel) releasePage(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: release %q", errNotFound, r.PathValue("id"))
	}
	rel, err := p.opts.Releases.GetRelease(r.Context(), id)
	if err != nil {
		return err
	}
	entries, err := p.timeline(r.Context(), rel)
	if err != nil {
		return err
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return a.Time.Compare(b.Time) })
	p.render(w, r, "timeline", View{Title: fmt.Sprintf("Release %s@%s", rel.Application, shortSHA(rel.Revision)),
		Nav: "apps", Data: timelinePage{Release: &rel, Entries: entries}})
	return nil
}

// appTimeline is GET /apps/{ns}/{name}/timeline: the timelines of the app's last releases in
// its environment, as one, newest first.
func (p *Panel) appTimeline(w http.ResponseWriter, r *http.Request) error {
	app, err := p.load(r)
	if err != nil {
		return err
	}
	rels, err := p.opts.Releases.FindReleases(r.Context(), release.Filter{Application: app.Name,
		Environment: environment(app), Limit: 10})
	if err != nil {
		return err
	}
	var entries []entry
	for _, rel := range rels.Releases {
		es, err := p.timeline(r.Context(), rel)
		if err != nil {
			return err
		}
		entries = append(entries, es...)
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return b.Time.Compare(a.Time) })
	p.render(w, r, "timeline", View{Title: "Timeline " + app.Name, Nav: "apps",
		Data: timelinePage{App: app, Releases: rels.Releases, Entries: entries}})
	return nil
}

func (p *Panel) timeline(ctx context.Context, rel release.Release) ([]entry, error) {
	name := rel.Application + "@" + shortSHA(rel.Revision)
	entries := []entry{{Time: rel.StartedAt, Kind: "deploy", Type: "release", ReleaseID: rel.ID, Release: name,
		Summary: fmt.Sprintf("release %d of %s to %s: %s", rel.ID, name, rel.Environment,
			cmp.Or(firstLine(rel.CommitMessage), rel.Revision))}}
	tl, err := p.opts.Releases.Timeline(ctx, rel.ID, release.TimelineFilter{Limit: maxTimeline})
	if err != nil {
		return nil, err
	}
	for _, e := range tl.Events {
		en := entry{Time: e.Time, Type: string(e.Type), Summary: e.Summary, ReleaseID: rel.ID, Release: name}
		kind, _, _ := strings.Cut(string(e.Type), ".")
		switch kind {
		case "deploy", "health", "secret":
			en.Kind = "deploy"
		case "alert":
			en.Kind = "alert"
			if id := e.Attributes["alert"]; id != "" {
				en.Link = "/alerts/" + url.PathEscape(id)
			}
		case "error":
			en.Kind = "error"
			if id := e.Attributes["issue"]; id != "" {
				en.Link = "/issues/" + url.PathEscape(id)
			}
		default:
			en.Kind = "other"
		}
		entries = append(entries, en)
	}
	if n := p.opts.Settings.Notify; n != nil {
		page, err := n.Find(ctx, notify.Filter{ReleaseID: rel.ID, Limit: 100})
		if err != nil {
			return nil, err
		}
		for _, note := range page.Notifications {
			at := note.CreatedAt
			if note.SentAt != nil {
				at = *note.SentAt
			}
			entries = append(entries, entry{Time: at, Kind: "notify", Type: "notification." + string(note.Status),
				Summary:   fmt.Sprintf("%s → %s: %s", note.Event.Type, note.Channel, note.Event.Summary),
				ReleaseID: rel.ID, Release: name})
		}
	}
	return entries, nil
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
