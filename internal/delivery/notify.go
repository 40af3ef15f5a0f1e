package delivery

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

// Notifier routes timeline events to chat channels. The notifications it returns are stored
// with the event, in one transaction; Kick then wakes the outbox's worker.
type Notifier interface {
	Route(e notify.Event, app []notify.AppSubscription) (notes []notify.Notification, unknown []string)
	// EventURL is the panel page of a release, or "" when the panel's address is not known.
	EventURL(releaseID int64) string
	Kick()
}

// occurrence is what happened, as record reports it: the timeline event and the details the
// notification templates show.
type occurrence struct {
	typ       release.EventType
	eventType string // Normal or Warning, for the Kubernetes Event
	reason    string // the Kubernetes Event's reason
	msg       string
	// key makes the timeline event, and so its notifications, happen once per release.
	key string
	// rel is the release, when the caller has it; otherwise it is read from the store.
	rel      *release.Release
	changes  *changeCounts
	duration time.Duration
	object   string
	cause    string
}

// record appends an event to a release's timeline, with the notifications it causes in the
// same transaction, and emits the matching Kubernetes Event on the Application. Timeline
// failures are reported as Kubernetes Events, not sync failures.
func (r *Reconciler) record(ctx context.Context, app *v1alpha1.Application, releaseID int64, o occurrence) {
	ev := &release.Event{ReleaseID: releaseID, Type: o.typ, Time: time.Now(), Summary: trimMessage(o.msg), Key: o.key,
		Attributes: map[string]string{"application": app.Namespace + "/" + app.Name}}
	var notes []notify.Notification
	if r.opts.Notifier != nil {
		var unknown []string
		notes, unknown = r.opts.Notifier.Route(r.notifyEvent(ctx, app, releaseID, ev, o), appSubscriptions(app))
		if len(unknown) > 0 {
			r.events.Eventf(app, nil, corev1.EventTypeWarning, "UnknownChannel", "Notify",
				"spec.notify names channel(s) not in Ferry's configuration: %s", strings.Join(unknown, ", "))
		}
	}
	recorded, err := r.releases.RecordEvent(ctx, ev, notes)
	if err != nil {
		r.events.Eventf(app, nil, corev1.EventTypeWarning, "TimelineFailed", "Record", "release %d: %v", releaseID, err)
	}
	if recorded && len(notes) > 0 {
		r.opts.Notifier.Kick()
	}
	if err == nil && !recorded {
		return // recorded by an earlier reconcile: its Kubernetes Event was emitted then
	}
	r.events.Eventf(app, nil, o.eventType, o.reason, "Sync", "%s", trimMessage(o.msg))
}

// notifyEvent is the notification payload of a timeline event.
func (r *Reconciler) notifyEvent(ctx context.Context, app *v1alpha1.Application, releaseID int64, ev *release.Event, o occurrence) notify.Event {
	rel := o.rel
	if rel == nil {
		if got, err := r.releases.GetRelease(ctx, releaseID); err == nil {
			rel = &got
		}
	}
	n := notify.Event{
		Type: string(ev.Type), Time: ev.Time, Summary: ev.Summary,
		Application: app.Name, Namespace: app.Namespace, Environment: environment(app),
		ReleaseID: releaseID, Duration: o.duration, Object: o.object, Reason: trimMessage(o.cause),
		URL: r.opts.Notifier.EventURL(releaseID),
	}
	if rel != nil {
		n.Revision, n.CommitMessage, n.Author = rel.Revision, rel.CommitMessage, rel.Author
		n.CommitURL = CommitURL(app.Spec.Source.RepoURL, rel.Revision)
	}
	if c := o.changes; c != nil {
		n.Changes = &notify.Changes{Created: c.created, Configured: c.configured, Unchanged: c.unchanged, Pruned: c.pruned}
	}
	return n
}

func appSubscriptions(app *v1alpha1.Application) []notify.AppSubscription {
	subs := make([]notify.AppSubscription, 0, len(app.Spec.Notify))
	for _, s := range app.Spec.Notify {
		subs = append(subs, notify.AppSubscription{Channel: s.Channel, On: s.On})
	}
	return subs
}

// CommitURL is the web page of a commit of the repository at repoURL, as GitHub, GitLab,
// Gitea, Forgejo and Bitbucket all serve it: the repository's HTTPS address plus
// /commit/SHA. SSH addresses (ssh://git@host/o/r.git and git@host:o/r.git) map to the same
// HTTPS address, and credentials in the URL are dropped. It returns "" for what is not a
// remote git URL, such as a file path.
func CommitURL(repoURL, sha string) string {
	if sha == "" {
		return ""
	}
	raw := repoURL
	if !strings.Contains(raw, "://") {
		// scp-like: git@host:owner/repo.git
		userHost, path, ok := strings.Cut(raw, ":")
		if !ok {
			return ""
		}
		_, host, found := strings.Cut(userHost, "@")
		if !found {
			host = userHost
		}
		raw = "https://" + host + "/" + strings.TrimPrefix(path, "/")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	switch u.Scheme {
	case "http", "https":
	case "ssh", "git":
		u.Scheme = "https"
		u.Host = u.Hostname() // an SSH port is not the web server's
	default:
		return ""
	}
	u.User, u.RawQuery, u.Fragment, u.RawPath = nil, "", "", ""
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git") + "/commit/" + url.PathEscape(sha)
	return u.String()
}

// noteHealth records the health transitions of an Application at rest: degraded when it turns
// Degraded, recovered when it is Healthy again, however it got there (a Deployment passes
// through Progressing during a rollout). A flap from Degraded through Progressing back to
// Degraded is the same degradation and is not noted again. Transitions during a sync are the
// sync's outcome and are not noted twice. Keys come from status that a repeated reconcile
// sees unchanged, so each transition is recorded once.
func (r *Reconciler) noteHealth(ctx context.Context, app *v1alpha1.Application, before v1alpha1.HealthStatus) {
	h := &app.Status.Health
	h.DegradedSince = before.DegradedSince
	if len(app.Status.History) == 0 {
		return
	}
	rel := app.Status.History[0].ReleaseID
	switch {
	case h.Status == v1alpha1.HealthDegraded && before.Status != v1alpha1.HealthDegraded && h.DegradedSince == nil:
		since := "start"
		if before.LastTransitionTime != nil {
			since = before.LastTransitionTime.UTC().Format(time.RFC3339Nano)
		}
		h.DegradedSince = h.LastTransitionTime
		object, cause, _ := strings.Cut(h.Message, ": ")
		r.record(ctx, app, rel, occurrence{typ: release.EventHealthDegraded, eventType: corev1.EventTypeWarning,
			reason: "HealthDegraded", msg: "health degraded: " + h.Message, key: "health.degraded/" + since,
			object: object, cause: cause})
	case h.Status == v1alpha1.HealthHealthy && h.DegradedSince != nil:
		since := h.DegradedSince.UTC().Format(time.RFC3339Nano)
		h.DegradedSince = nil
		r.record(ctx, app, rel, occurrence{typ: release.EventHealthRecovered, eventType: corev1.EventTypeNormal,
			reason: "HealthRecovered", msg: "health recovered: Healthy again after Degraded since " + since,
			key: "health.recovered/" + since})
	}
}

// setHealth sets status.health, stamping when its status changes. DegradedSince is noteHealth's
// to keep.
func setHealth(app *v1alpha1.Application, h v1alpha1.HealthStatus) {
	old := app.Status.Health
	h.DegradedSince = old.DegradedSince
	if old.Status == h.Status && old.LastTransitionTime != nil {
		h.LastTransitionTime = old.LastTransitionTime
	} else {
		now := metav1.Now()
		h.LastTransitionTime = &now
	}
	app.Status.Health = h
}

// rollbackSummary says what a rollback release does, for its deploy.rollback event.
func rollbackSummary(app *v1alpha1.Application, revision string) string {
	return fmt.Sprintf("rolled back to %s while %s is at %s; the next commit or `ferry app resume %s` ends it",
		short(revision), trackedName(app), short(app.Status.Rollback.TrackedHead), app.Name)
}
