// Package delivery is Ferry's GitOps engine: a controller that keeps the objects of each
// Application equal to a path of a git repository.
//
// One reconcile is a straight line of steps: fetch the revision, decide whether to sync,
// render, dry-run the whole set, apply (cluster definitions first, then by sync wave, each wave
// healthy before the next), prune what left git, wait for health, and record the sync as a
// release with its timeline. Every failure is a typed error that says whether retrying helps;
// the status is patched in a deferred function, so it is written whatever happens.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/clusterreader"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"github.com/fluxcd/pkg/ssa"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ferrycd/ferry/api/v1alpha1"
	gitsource "github.com/ferrycd/ferry/internal/delivery/source"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

// FieldManager is the server-side apply field manager of every object Ferry applies.
const FieldManager = "ferry"

// historyLimit is how many syncs status.history keeps.
const historyLimit = 10

// Releases is where syncs are recorded: Ferry's store.
type Releases interface {
	CreateRelease(ctx context.Context, r *release.Release) error
	FinishRelease(ctx context.Context, id int64, result release.Result, at time.Time) error
	GetRelease(ctx context.Context, id int64) (release.Release, error)
	// RecordEvent appends e to its release's timeline with the notifications it causes, in one
	// transaction, and reports whether it was new: an event whose Key the release already has
	// is not recorded again.
	RecordEvent(ctx context.Context, e *release.Event, notes []notify.Notification) (bool, error)
}

// Options tunes the Reconciler. The zero value is ready to use.
type Options struct {
	// Concurrency is how many Applications do a sync's work at once; zero means 20. Up to
	// three times as many more may be waiting meanwhile for their objects to become healthy
	// (slots.go).
	Concurrency int
	// DefaultInterval is the poll interval of Applications that set none; zero means 3m.
	DefaultInterval time.Duration
	// HealthTimeout bounds the wait for applied objects to become healthy; zero means 5m.
	HealthTimeout time.Duration
	// PollInterval is how often health is polled during a sync; zero means 1s.
	PollInterval time.Duration
	// Secrets reads Vault for Secret manifests marked ferry.dev/secrets: resolve and for the
	// versions behind secret rotation; nil means a revision that references Vault is refused.
	Secrets SecretSource
	// SecretCheckInterval is how often the Vault versions referenced by an Application are
	// checked for rotation; zero means 1m.
	SecretCheckInterval time.Duration
	// Notifier routes timeline events to chat channels; nil sends no notifications.
	Notifier Notifier
	// Namespaces, when set, are the only namespaces whose Applications this Reconciler serves
	// (the controller manager's cache must agree); empty means all.
	Namespaces []string
	Logger     *slog.Logger
	// Registerer receives the delivery metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 20
	}
	if o.DefaultInterval <= 0 {
		o.DefaultInterval = 3 * time.Minute
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 5 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.SecretCheckInterval <= 0 {
		o.SecretCheckInterval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Reconciler syncs Applications.
type Reconciler struct {
	client   client.Client
	mapper   apimeta.RESTMapper
	manager  *ssa.ResourceManager
	mirrors  *gitsource.Mirrors
	releases Releases
	events   events.EventRecorder
	opts     Options
	metrics  *metrics
	// refresh carries reconciles asked for from outside, such as by a push webhook.
	refresh chan event.TypedGenericEvent[*v1alpha1.Application]
	// owned watches applied objects for drift; nil until SetupWithManager.
	owned *ownedWatcher
	// treesRead maps each commit SHA whose tree a reconcile read to when, for PruneTrees.
	treesRead sync.Map
	// apiReader reads Applications from the API server, past the cache; nil until
	// SetupWithManager.
	apiReader client.Reader
	// written maps each Application (its NamespacedName) to the newest history entry this
	// process wrote to its status (a writtenEntry); see staleHistory.
	written sync.Map
	// slots holds one token for each reconcile doing work (slots.go).
	slots chan struct{}
}

// writtenEntry identifies the newest history entry written to an Application's status.
type writtenEntry struct {
	uid types.UID
	id  int64
}

// staleHistory reports whether app, as read from the cache, lacks the newest history entry
// this process wrote to it: a reconcile that starts right after the last one patched the
// status can read the Application before the watch has delivered that patch, and would
// otherwise sync the same revision again as if it never had.
func (r *Reconciler) staleHistory(key client.ObjectKey, app *v1alpha1.Application) bool {
	v, ok := r.written.Load(key)
	if !ok {
		return false
	}
	w := v.(writtenEntry)
	return w.uid == app.UID && (len(app.Status.History) == 0 || app.Status.History[0].ID < w.id)
}

// NewReconciler returns a Reconciler that talks to the cluster through c (which must read
// uncached, unstructured objects), fetches git through mirrors and records releases.
func NewReconciler(c client.Client, mapper apimeta.RESTMapper, mirrors *gitsource.Mirrors, releases Releases,
	recorder events.EventRecorder, opts Options) *Reconciler {
	opts = opts.withDefaults()
	manager := newResourceManager(c, mapper)
	manager.SetConcurrency(opts.Concurrency)
	return &Reconciler{client: c, mapper: mapper, manager: manager, mirrors: mirrors,
		releases: releases, events: recorder, opts: opts, metrics: newMetrics(opts.Registerer),
		refresh: make(chan event.TypedGenericEvent[*v1alpha1.Application], 1024),
		slots:   make(chan struct{}, opts.Concurrency)}
}

// newResourceManager returns the server-side apply engine. Its health poller reads each object
// by name instead of listing its kind, so Ferry needs no right to list Secrets (a cluster-wide
// read of every secret) to wait for an app that ships one.
func newResourceManager(c client.Client, mapper apimeta.RESTMapper) *ssa.ResourceManager {
	poller := polling.NewStatusPoller(c, mapper, polling.Options{
		ClusterReaderFactory: engine.ClusterReaderFactoryFunc(clusterreader.NewDirectClusterReader),
	})
	return ssa.NewResourceManager(c, poller, ssa.Owner{Field: FieldManager, Group: v1alpha1.GroupVersion.Group})
}

// SetupWithManager registers the Reconciler with mgr. Status writes do not trigger a
// reconcile; spec changes and annotations (a sync request) do.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.apiReader = mgr.GetAPIReader()
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Application{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Several managers may run in one process (tests, shards); their metrics share names.
		WithOptions(controller.Options{MaxConcurrentReconciles: r.opts.Concurrency * waitingWorkers, SkipNameValidation: new(true)}).
		WatchesRawSource(source.Channel(r.refresh, &handler.TypedEnqueueRequestForObject[*v1alpha1.Application]{})).
		Build(r)
	if err != nil {
		return err
	}
	r.owned, err = newOwnedWatcher(mgr, c, r.opts.Namespaces, r.opts.Logger)
	return err
}

// Refresh reconciles now every Application that match accepts, and returns how many. The
// repository of each is invalidated first, so the reconcile asks git anew instead of taking
// an answer from before the push that called Refresh.
func (r *Reconciler) Refresh(ctx context.Context, match func(*v1alpha1.Application) bool) (int, error) {
	var list v1alpha1.ApplicationList
	if err := r.client.List(ctx, &list); err != nil {
		return 0, fmt.Errorf("list applications: %w", err)
	}
	n := 0
	for i := range list.Items {
		app := &list.Items[i]
		if app.Spec.Suspend || !match(app) {
			continue
		}
		r.mirrors.Invalidate(app.Spec.Source.RepoURL)
		select {
		case r.refresh <- event.TypedGenericEvent[*v1alpha1.Application]{Object: app}:
			n++
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	return n, nil
}

// PruneTrees removes the exported git trees that no Application needs any more: all but the
// commits Applications are at or pinned to, and those a reconcile read within grace (it may
// still be rendering them). A pruned commit is exported again if it is ever fetched.
func (r *Reconciler) PruneTrees(ctx context.Context, grace time.Duration) (int, error) {
	var list v1alpha1.ApplicationList
	if err := r.client.List(ctx, &list); err != nil {
		return 0, fmt.Errorf("list applications: %w", err)
	}
	keep := map[string]bool{}
	for _, app := range list.Items {
		keep[app.Status.Sync.Revision] = true
		if app.Status.Rollback != nil {
			keep[app.Status.Rollback.Revision] = true
		}
	}
	cutoff := time.Now().Add(-grace)
	r.treesRead.Range(func(k, v any) bool {
		if v.(time.Time).After(cutoff) {
			keep[k.(string)] = true
		} else {
			r.treesRead.Delete(k)
		}
		return true
	})
	return r.mirrors.Prune(func(sha string) bool { return keep[sha] })
}

// Reconcile brings one Application in line with git and writes its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	ctx, release, err := r.withSlot(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	defer release()
	app := &v1alpha1.Application{}
	err = r.client.Get(ctx, req.NamespacedName, app)
	if err == nil && r.apiReader != nil && r.staleHistory(req.NamespacedName, app) {
		err = r.apiReader.Get(ctx, req.NamespacedName, app)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			r.metrics.forget(req.Namespace, req.Name)
			r.written.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !app.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	log := r.opts.Logger.With("application", req.String())
	start := time.Now()

	base := app.DeepCopy()
	defer func() {
		app.Status.ObservedGeneration = app.Generation
		if app.Status.Sync.Status == "" && app.Status.Sync.Revision != "" {
			// status.sync.status is required once status.sync is written at all.
			app.Status.Sync.Status = v1alpha1.SyncUnknown
		}
		r.owned.ensure(ctx, app.Status.Inventory)
		if err := r.client.Status().Patch(ctx, app, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, fmt.Errorf("patch status: %w", err))
		} else if err == nil && len(app.Status.History) > 0 {
			r.written.Store(req.NamespacedName, writtenEntry{uid: app.UID, id: app.Status.History[0].ID})
		}
		r.metrics.reconcile.Observe(time.Since(start).Seconds())
		r.metrics.observe(app)
		log.Debug("reconciled", "duration", time.Since(start), "err", retErr)
	}()

	if app.Spec.Suspend {
		setCondition(app, v1alpha1.ConditionReady, metav1.ConditionFalse, "Suspended", "syncs are suspended")
		apimeta.RemoveStatusCondition(&app.Status.Conditions, v1alpha1.ConditionReconciling)
		return ctrl.Result{}, nil
	}

	interval := r.interval(app)

	err = r.reconcile(ctx, app)
	apimeta.RemoveStatusCondition(&app.Status.Conditions, v1alpha1.ConditionReconciling)
	switch {
	case err == nil:
		apimeta.RemoveStatusCondition(&app.Status.Conditions, v1alpha1.ConditionStalled)
		if app.Status.SecretsRevision != "" {
			// Check the versions of the Vault paths it references for rotation.
			interval = min(interval, r.opts.SecretCheckInterval)
		}
		return ctrl.Result{RequeueAfter: interval}, nil
	case errors.Is(err, errStalled):
		reason := reasonOf(err, "Stalled")
		setCondition(app, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, err.Error())
		setCondition(app, v1alpha1.ConditionStalled, metav1.ConditionTrue, reason, err.Error())
		// Poll on: a new commit is what un-stalls it.
		return ctrl.Result{RequeueAfter: interval}, nil
	case errors.Is(err, errWaiting):
		reason := reasonOf(err, "Waiting")
		setCondition(app, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, err.Error())
		apimeta.RemoveStatusCondition(&app.Status.Conditions, v1alpha1.ConditionStalled)
		log.Info("waiting", "reason", reason, "err", err)
		return ctrl.Result{RequeueAfter: min(interval, 10*time.Second)}, nil
	default:
		setCondition(app, v1alpha1.ConditionReady, metav1.ConditionFalse, "ReconcileError", err.Error())
		return ctrl.Result{}, err
	}
}

// reconcile is the straight line: fetch, decide, then sync or check drift and health.
func (r *Reconciler) reconcile(ctx context.Context, app *v1alpha1.Application) error {
	art, err := r.fetch(ctx, app, app.Spec.Source.Revision, r.revisionAge(app))
	if err != nil {
		return err
	}
	if art, err = r.pin(ctx, app, art); err != nil {
		return err
	}
	app.Status.Sync.Revision = art.Revision

	switch r.decide(app, art) {
	case syncNow:
		return r.sync(ctx, app, art)
	case outOfSync:
		app.Status.Sync.Status = v1alpha1.SyncOutOfSync
		setCondition(app, v1alpha1.ConditionReady, metav1.ConditionFalse, "OutOfSync",
			fmt.Sprintf("revision %s is not applied; automated sync is off: run `ferry app sync %s`", short(art.Revision), app.Name))
		return r.refreshHealth(ctx, app)
	case stalledOnFailure:
		if err := r.refreshHealth(ctx, app); err != nil {
			return err
		}
		last := app.Status.History[0]
		return stalled("SyncFailed", "sync of revision %s failed at %s; a new commit or spec change retries it",
			short(last.Revision), last.DeployedAt.UTC().Format(time.RFC3339))
	default: // upToDate
		if err := r.checkDrift(ctx, app, art); err != nil {
			return err
		}
		before := app.Status.Health
		if err := r.refreshHealth(ctx, app); err != nil {
			return err
		}
		r.noteHealth(ctx, app, before)
		setSteadyReady(app)
		return nil
	}
}

type decision int

const (
	upToDate decision = iota
	syncNow
	outOfSync
	stalledOnFailure
)

// decide says whether this reconcile syncs. A sync happens for a new revision or a changed spec
// when automated, for a sync request always, and never again for the same revision and spec
// after a failure (Argo CD's rule too), unless the retry policy allows it.
func (r *Reconciler) decide(app *v1alpha1.Application, art gitsource.Artifact) decision {
	if syncRequested(app) {
		return syncNow
	}
	var last *v1alpha1.HistoryEntry
	if len(app.Status.History) > 0 {
		last = &app.Status.History[0]
	}
	changed := last == nil || last.Revision != art.Revision || last.Generation != app.Generation
	switch {
	case changed && app.Spec.SyncPolicy.Automated:
		return syncNow
	case changed:
		return outOfSync
	case last.Result == string(release.ResultFailed) && app.Spec.SyncPolicy.Automated:
		if r.retryDue(app) {
			return syncNow
		}
		return stalledOnFailure
	}
	return upToDate
}

// retryDue reports whether the retry policy allows another sync of a failed revision now.
func (r *Reconciler) retryDue(app *v1alpha1.Application) bool {
	p := app.Spec.SyncPolicy.Retry
	if p == nil {
		return false
	}
	failures := 0
	for _, h := range app.Status.History {
		if h.Revision != app.Status.History[0].Revision || h.Result != string(release.ResultFailed) {
			break
		}
		failures++
	}
	if p.Limit > 0 && failures > int(p.Limit) {
		return false
	}
	backoff, maxBackoff := 5*time.Second, 3*time.Minute
	if p.Backoff != nil {
		backoff = p.Backoff.Duration
	}
	if p.MaxBackoff != nil {
		maxBackoff = p.MaxBackoff.Duration
	}
	wait := min(backoff<<min(failures-1, 30), maxBackoff)
	return time.Since(app.Status.History[0].DeployedAt.Time) >= wait
}

// pin applies a rollback: while the ferry.dev/rollback-to annotation names a commit and the
// tracked revision has not moved since the pin was set, the pinned commit is what gets synced.
// A new commit on the tracked revision ends the pin (the new commit is the fix), and so does
// removing the annotation. Unlike Argo CD, this works with automated sync on.
func (r *Reconciler) pin(ctx context.Context, app *v1alpha1.Application, tracked gitsource.Artifact) (gitsource.Artifact, error) {
	want := app.Annotations[v1alpha1.AnnotationRollbackTo]
	pinned := app.Status.Rollback
	switch {
	case want == "":
		if pinned != nil {
			app.Status.Rollback = nil
			apimeta.RemoveStatusCondition(&app.Status.Conditions, v1alpha1.ConditionPinned)
		}
		return tracked, nil
	case pinned != nil && pinned.TrackedHead != tracked.Revision:
		// A new commit: unpin and deploy it.
		patch := client.MergeFrom(app.DeepCopy())
		delete(app.Annotations, v1alpha1.AnnotationRollbackTo)
		if err := r.client.Patch(ctx, app, patch); err != nil {
			return tracked, fmt.Errorf("remove rollback pin: %w", err)
		}
		r.events.Eventf(app, nil, corev1.EventTypeNormal, "Unpinned", "Rollback",
			"new commit %s on %s ends the rollback to %s", short(tracked.Revision), trackedName(app), short(pinned.Revision))
		app.Status.Rollback = nil
		apimeta.RemoveStatusCondition(&app.Status.Conditions, v1alpha1.ConditionPinned)
		return tracked, nil
	}
	art, err := r.fetch(ctx, app, want, r.revisionAge(app))
	if err != nil {
		return art, err
	}
	if pinned == nil || pinned.Revision != art.Revision {
		app.Status.Rollback = &v1alpha1.RollbackStatus{Revision: art.Revision, TrackedHead: tracked.Revision, PinnedAt: metav1.Now()}
	}
	setCondition(app, v1alpha1.ConditionPinned, metav1.ConditionTrue, "Rollback",
		fmt.Sprintf("pinned to %s by a rollback; the next commit on %s or `ferry app resume %s` unpins it",
			short(art.Revision), trackedName(app), app.Name))
	return art, nil
}

func trackedName(app *v1alpha1.Application) string {
	if app.Spec.Source.Revision == "" {
		return "the default branch"
	}
	return app.Spec.Source.Revision
}

// syncRequested reports whether a sync asked for by hand (ferry app sync) waits to be handled.
func syncRequested(app *v1alpha1.Application) bool {
	req := app.Annotations[v1alpha1.AnnotationSyncRequested]
	return req != "" && req != app.Status.LastHandledSyncRequest
}

// maxRevisionAge bounds revisionAge.
const maxRevisionAge = 5 * time.Second

// revisionAge is how old an answer from the git mirrors a reconcile accepts
// (gitsource.Request.MaxAge): a tenth of the Application's poll interval, at most
// maxRevisionAge, and none for a sync asked for by hand. A push webhook invalidates its
// repository's answers (Refresh), so the reconcile it triggers never gets one from before
// the push.
func (r *Reconciler) revisionAge(app *v1alpha1.Application) time.Duration {
	if syncRequested(app) {
		return 0
	}
	return min(r.interval(app)/10, maxRevisionAge)
}

// interval is the Application's poll interval, or the default.
func (r *Reconciler) interval(app *v1alpha1.Application) time.Duration {
	if i := app.Spec.SyncPolicy.Interval; i != nil && i.Duration > 0 {
		return i.Duration
	}
	return r.opts.DefaultInterval
}

// fetch resolves revision of the Application's repository, with its credentials, accepting
// an answer up to maxAge old (gitsource.Request.MaxAge).
func (r *Reconciler) fetch(ctx context.Context, app *v1alpha1.Application, revision string, maxAge time.Duration) (gitsource.Artifact, error) {
	creds, err := r.credentials(ctx, app)
	if err != nil {
		return gitsource.Artifact{}, err
	}
	art, err := r.mirrors.Fetch(ctx, gitsource.Request{
		RepoURL:     app.Spec.Source.RepoURL,
		Revision:    revision,
		Credentials: creds,
		MaxAge:      maxAge,
	})
	switch {
	case err == nil:
		r.treesRead.Store(art.Revision, time.Now())
		return art, nil
	case errors.Is(err, gitsource.ErrAuth):
		return art, waiting("GitAuthFailed", "%w", err)
	case errors.Is(err, gitsource.ErrRevisionNotFound), errors.Is(err, gitsource.ErrRepositoryNotFound):
		return art, stalled("SourceNotFound", "%w", err)
	case errors.Is(err, gitsource.ErrInvalidURL):
		return art, stalled("InvalidSpec", "%w", err)
	case errors.Is(err, gitsource.ErrUnsafeTree), errors.Is(err, gitsource.ErrTreeTooLarge):
		return art, stalled("UnsafeRevision", "%w", err)
	default:
		return art, waiting("GitFetchFailed", "%w", err)
	}
}

// credentials reads the Secret named by spec.credentialsRef.
func (r *Reconciler) credentials(ctx context.Context, app *v1alpha1.Application) (*gitsource.Credentials, error) {
	ref := app.Spec.CredentialsRef
	if ref == nil {
		return nil, nil
	}
	var s corev1.Secret
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: ref.Name}, &s); err != nil {
		return nil, waiting("CredentialsNotFound", "credentials secret %s/%s: %w", app.Namespace, ref.Name, err)
	}
	return &gitsource.Credentials{
		Username:      string(s.Data["username"]),
		Password:      string(s.Data["password"]),
		SSHPrivateKey: s.Data["sshPrivateKey"],
		KnownHosts:    s.Data["knownHosts"],
	}, nil
}

func setCondition(app *v1alpha1.Application, typ string, status metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: trimMessage(msg), ObservedGeneration: app.Generation,
	})
}

// trimMessage keeps condition messages readable and within the API's 32 KiB limit.
func trimMessage(s string) string {
	const maxLen = 4096
	if len(s) > maxLen {
		return s[:maxLen-3] + "..."
	}
	return s
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
