package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/delivery/render"
	"github.com/ferrycd/ferry/internal/delivery/source"
	"github.com/ferrycd/ferry/internal/release"
)

// sync applies one revision and records it as a release, whatever the outcome. A revision
// that cannot be prepared for a reason outside git (Vault unreachable or refusing) is not a
// release yet: it waits, like a failed fetch, and is retried.
func (r *Reconciler) sync(ctx context.Context, app *v1alpha1.Application, art source.Artifact) error {
	objs, vault, workloadEnv, desiredErr := r.desiredWithEnv(ctx, app, art)
	if errors.Is(desiredErr, errWaiting) {
		app.Status.Sync.Status = v1alpha1.SyncOutOfSync
		return desiredErr
	}
	rel := &release.Release{
		Application:   app.Name,
		Environment:   environment(app),
		Revision:      art.Revision,
		CommitMessage: art.CommitMessage,
		Author:        art.Author,
		StartedAt:     time.Now(),
		Result:        release.ResultPending,
	}
	if err := r.releases.CreateRelease(ctx, rel); err != nil {
		return fmt.Errorf("record release: %w", err)
	}
	if req := app.Annotations[v1alpha1.AnnotationSyncRequested]; req != "" {
		app.Status.LastHandledSyncRequest = req
	}
	setCondition(app, v1alpha1.ConditionReconciling, metav1.ConditionTrue, "Progressing", "syncing revision "+short(art.Revision))
	r.record(ctx, app, rel.ID, occurrence{typ: release.EventDeployStarted, eventType: corev1.EventTypeNormal,
		reason: "SyncStarted", msg: fmt.Sprintf("sync of revision %s started", short(art.Revision)),
		key: string(release.EventDeployStarted), rel: rel})
	if app.Status.Rollback != nil && app.Status.Rollback.Revision == art.Revision {
		r.record(ctx, app, rel.ID, occurrence{typ: release.EventDeployRollback, eventType: corev1.EventTypeNormal,
			reason: "Rollback", msg: rollbackSummary(app, art.Revision), key: string(release.EventDeployRollback), rel: rel})
	}

	inventory, counts, syncErr := r.apply(ctx, app, objs, vault, desiredErr)
	app.Status.Inventory = inventory
	if syncErr == nil && counts.kept == 0 {
		// The sync waited for every object it owns to be healthy.
		setHealth(app, v1alpha1.HealthStatus{Status: v1alpha1.HealthHealthy})
	} else if err := r.refreshHealth(ctx, app); err != nil && syncErr == nil {
		syncErr = err
	}

	finished := time.Now()
	result := release.ResultSucceeded
	if syncErr != nil {
		result = release.ResultFailed
	}
	r.metrics.syncs.WithLabelValues(string(result)).Inc()
	if err := r.releases.FinishRelease(ctx, rel.ID, result, finished); err != nil {
		syncErr = errors.Join(syncErr, fmt.Errorf("finish release %d: %w", rel.ID, err))
	}
	if syncErr != nil {
		app.Status.Sync.Status = v1alpha1.SyncOutOfSync
		object, cause := failedObject(syncErr)
		r.record(ctx, app, rel.ID, occurrence{typ: release.EventDeployFailed, eventType: corev1.EventTypeWarning,
			reason: "SyncFailed", msg: fmt.Sprintf("sync of revision %s failed: %v", short(art.Revision), syncErr),
			key: string(release.EventDeployFailed), rel: rel, changes: &counts, duration: finished.Sub(rel.StartedAt),
			object: object, cause: cause})
	} else {
		app.Status.Sync.Status = v1alpha1.SyncSynced
		app.Status.WorkloadEnv = &workloadEnv
		app.Status.Health.DegradedSince = nil // the deploy's own message says it is healthy
		msg := fmt.Sprintf("revision %s applied (%s) and healthy in %s", short(art.Revision), counts, finished.Sub(rel.StartedAt).Round(time.Millisecond))
		setCondition(app, v1alpha1.ConditionReady, metav1.ConditionTrue, "Synced", msg)
		r.record(ctx, app, rel.ID, occurrence{typ: release.EventDeploySucceeded, eventType: corev1.EventTypeNormal,
			reason: "Synced", msg: msg, key: string(release.EventDeploySucceeded), rel: rel, changes: &counts,
			duration: finished.Sub(rel.StartedAt)})
	}

	id := int64(1)
	if len(app.Status.History) > 0 {
		id = app.Status.History[0].ID + 1
	}
	entry := v1alpha1.HistoryEntry{ID: id, Revision: art.Revision, Generation: app.Generation,
		DeployedAt: metav1.NewTime(finished), Result: string(result), ReleaseID: rel.ID}
	app.Status.History = append([]v1alpha1.HistoryEntry{entry}, app.Status.History...)
	if len(app.Status.History) > historyLimit {
		app.Status.History = app.Status.History[:historyLimit]
	}
	now := metav1.NewTime(finished)
	app.Status.LastSyncedAt = &now
	return syncErr
}

// changeCounts says what a sync did to the cluster. kept counts objects that left git but
// stay, unpruned.
type changeCounts struct{ created, configured, unchanged, pruned, kept int }

func (c changeCounts) String() string {
	return fmt.Sprintf("%d created, %d configured, %d unchanged, %d pruned", c.created, c.configured, c.unchanged, c.pruned)
}

func (c *changeCounts) add(cs *ssa.ChangeSet) {
	for _, e := range cs.Entries {
		switch e.Action {
		case ssa.CreatedAction:
			c.created++
		case ssa.ConfiguredAction:
			c.configured++
		case ssa.UnchangedAction:
			c.unchanged++
		case ssa.DeletedAction:
			c.pruned++
		}
	}
}

// apply applies the rendered revision, or fails with desiredErr, the rendering's error. It
// returns the inventory to keep, which also holds what was applied before a failure and what
// could not be pruned, so nothing Ferry created is ever forgotten.
func (r *Reconciler) apply(ctx context.Context, app *v1alpha1.Application, objs []*unstructured.Unstructured, vault vaultState,
	desiredErr error) ([]v1alpha1.ObjectRef, changeCounts, error) {
	old := app.Status.Inventory
	var counts changeCounts
	if desiredErr != nil {
		return old, counts, desiredErr
	}
	objs, hs, err := splitHooks(objs)
	if err != nil {
		return old, counts, err
	}
	if err := r.ensureNamespace(ctx, app); err != nil {
		return old, counts, err
	}
	waves, err := syncWaves(objs)
	if err != nil {
		return old, counts, err
	}
	opts := r.applyOptions()
	if len(waves) > 1 || slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool {
		return utils.IsClusterDefinition(o) || utils.IsCustomStage(o, opts.CustomStageKinds)
	}) {
		// ApplyAll dry-runs each stage before applying it; with several stages, check every
		// object that can be checked up front, so a bad object in a late stage applies nothing.
		if err := r.dryRun(ctx, objs); err != nil {
			return old, counts, err
		}
	}
	if err := r.runHooks(ctx, app, hookPreSync, hs[hookPreSync]); err != nil {
		return old, counts, r.syncFailed(ctx, app, hs, err)
	}

	settled := settledOnApply(objs)
	applied := ssa.NewChangeSet()
	for i, wave := range waves {
		cs, err := r.manager.ApplyAllStaged(ctx, wave.objects, opts)
		if cs != nil {
			applied.Append(cs.Entries)
		}
		if err != nil {
			return union(old, applied), counts, r.syncFailed(ctx, app, hs, classifyApply(err))
		}
		// Watched from now on, so that the waits below hear of their changes.
		r.owned.ensure(ctx, refsOf(cs))
		if i < len(waves)-1 {
			if err := r.wait(ctx, toRead(cs.ToObjMetadataSet(), settled)); err != nil {
				return union(old, applied), counts, r.syncFailed(ctx, app, hs,
					waiting("WaveUnhealthy", "sync wave %d: %w", wave.number, err))
			}
		}
	}
	counts.add(applied)

	inventory := refsOf(applied)
	stale := difference(old, inventory)
	if len(stale) > 0 {
		if app.Spec.SyncPolicy.Prune {
			kept, pruned := r.prune(ctx, app, stale)
			counts.pruned, counts.kept = pruned, len(kept)
			inventory = append(inventory, kept...)
		} else {
			counts.kept = len(stale)
			inventory = append(inventory, stale...)
		}
	}
	if err := r.wait(ctx, toRead(applied.ToObjMetadataSet(), settled)); err != nil {
		return inventory, counts, r.syncFailed(ctx, app, hs, waiting("HealthCheckFailed", "%w", err))
	}
	if err := r.runHooks(ctx, app, hookPostSync, hs[hookPostSync]); err != nil {
		return inventory, counts, r.syncFailed(ctx, app, hs, err)
	}
	app.Status.SecretsRevision = vault.revision
	return inventory, counts, nil
}

// roleKind is applied in a stage of its own, before the RoleBindings that name its objects:
// without the escalating "bind" right, the API server refuses a binding to a Role that does not
// exist yet.
var roleKind = schema.GroupKind{Group: rbacGroup, Kind: "Role"}

func (r *Reconciler) applyOptions() ssa.ApplyOptions {
	opts := ssa.DefaultApplyOptions()
	opts.WaitInterval = r.opts.PollInterval
	opts.WaitTimeout = r.opts.HealthTimeout
	opts.CustomStageKinds = map[schema.GroupKind]struct{}{roleKind: {}}
	return opts
}

// desired renders the revision and prepares its objects for apply: namespaces defaulted,
// owner labels set, Sentry variables set (sentryenv.go), Vault references applied.
func (r *Reconciler) desired(ctx context.Context, app *v1alpha1.Application, art source.Artifact) ([]*unstructured.Unstructured, vaultState, error) {
	objs, vault, _, err := r.desiredWithEnv(ctx, app, art)
	return objs, vault, err
}

// desiredWithEnv is desired that also returns the status.workloadEnv a successful sync records.
func (r *Reconciler) desiredWithEnv(ctx context.Context, app *v1alpha1.Application, art source.Artifact) (
	[]*unstructured.Unstructured, vaultState, v1alpha1.WorkloadEnvStatus, error) {
	var env v1alpha1.WorkloadEnvStatus
	opts, err := renderOptions(app)
	if err != nil {
		return nil, vaultState{}, env, err
	}
	objs, err := render.Render(ctx, art.Dir, app.Spec.Source.Path, opts)
	if err != nil {
		return nil, vaultState{}, env, stalled("RenderFailed", "render %s at %s: %w", pathOrRoot(app.Spec.Source.Path), short(art.Revision), err)
	}
	if err := r.prepare(app, objs); err != nil {
		return nil, vaultState{}, env, err
	}
	// Before applySecrets: the digest must not see resolved Secret values.
	if env, err = sentryEnv(app, art.Revision, objs); err != nil {
		return nil, vaultState{}, env, err
	}
	vault, err := r.applySecrets(ctx, app, objs)
	if err != nil {
		return nil, vaultState{}, env, err
	}
	return objs, vault, env, nil
}

func pathOrRoot(p string) string {
	if p == "" {
		return "the repository root"
	}
	return p
}

func renderOptions(app *v1alpha1.Application) (render.Options, error) {
	src := app.Spec.Source
	var opts render.Options
	switch {
	case src.Kustomize != nil:
		opts.Kustomize = &render.Kustomize{}
	case src.Helm != nil:
		h := &render.Helm{ReleaseName: src.Helm.ReleaseName, Namespace: app.Spec.Destination.Namespace, ValuesFiles: src.Helm.ValuesFiles}
		if h.ReleaseName == "" {
			h.ReleaseName = app.Name
		}
		if src.Helm.Values != nil && len(src.Helm.Values.Raw) > 0 {
			var values map[string]any
			if err := json.Unmarshal(src.Helm.Values.Raw, &values); err != nil {
				return opts, stalled("InvalidSpec", "spec.source.helm.values: %w", err)
			}
			h.Values = values
		}
		opts.Helm = h
	default:
		d := &render.Directory{}
		if src.Directory != nil {
			d.Recurse, d.Include, d.Exclude = src.Directory.Recurse, src.Directory.Include, src.Directory.Exclude
		}
		opts.Directory = d
	}
	return opts, nil
}

// prepare gives namespaced objects without a namespace the destination namespace and labels
// every object as owned by app. A kind the cluster does not know and the set does not define is
// refused here, with its name, rather than by a late apply.
func (r *Reconciler) prepare(app *v1alpha1.Application, objs []*unstructured.Unstructured) error {
	defined := crdScopes(objs)
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		namespaced, err := r.namespaced(gvk, defined)
		if err != nil {
			return stalled("InvalidObject", "%s: %w", utils.FmtUnstructured(o), err)
		}
		switch {
		case namespaced && o.GetNamespace() == "":
			o.SetNamespace(app.Spec.Destination.Namespace)
		case !namespaced:
			o.SetNamespace("")
		}
	}
	r.manager.SetOwnerLabels(objs, app.Name, app.Namespace)
	return nil
}

func (r *Reconciler) namespaced(gvk schema.GroupVersionKind, defined map[schema.GroupKind]bool) (bool, error) {
	mapping, err := r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil {
		return mapping.Scope.Name() == apimeta.RESTScopeNameNamespace, nil
	}
	if apimeta.IsNoMatchError(err) {
		if namespaced, ok := defined[gvk.GroupKind()]; ok {
			return namespaced, nil
		}
		return false, fmt.Errorf("the cluster has no kind %s in %s, and no CustomResourceDefinition in this revision defines it", gvk.Kind, gvk.GroupVersion())
	}
	return false, waiting("DiscoveryFailed", "discover %s: %w", gvk, err)
}

// crdScopes returns the kinds the CustomResourceDefinitions in objs define, and whether each is
// namespaced.
func crdScopes(objs []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if !utils.IsCRD(o) {
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &crd) != nil {
			continue
		}
		gk := schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}
		out[gk] = crd.Spec.Scope == apiextensionsv1.NamespaceScoped
	}
	return out
}

// ensureNamespace creates the destination namespace when asked to. It is not owned by the
// Application: deleting or pruning the app never deletes a namespace with other tenants.
func (r *Reconciler) ensureNamespace(ctx context.Context, app *v1alpha1.Application) error {
	if !app.Spec.Destination.CreateNamespace {
		return nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: app.Spec.Destination.Namespace}}
	if err := r.client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return waiting("NamespaceFailed", "create namespace %s: %w", ns.Name, err)
	}
	return nil
}

// dryRun runs a server-side dry-run apply of every object whose namespace and kind exist already
// (objects waiting for a namespace or CRD of the same set are checked when their stage applies).
func (r *Reconciler) dryRun(ctx context.Context, objs []*unstructured.Unstructured) error {
	roles := map[string]bool{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == roleKind {
			roles[o.GetNamespace()+"/"+o.GetName()] = true
		}
	}
	namespaces := map[string]bool{} // whether each namespace exists, read once per dry-run
	for _, o := range objs {
		if !r.checkable(ctx, o, namespaces) || bindsRoleInSet(o, roles) {
			continue
		}
		if _, _, _, err := r.manager.Diff(ctx, o, ssa.DefaultDiffOptions()); err != nil {
			return classifyApply(err)
		}
	}
	return nil
}

// bindsRoleInSet reports whether o is a RoleBinding to a Role of the same set, which can only
// be checked once that Role exists.
func bindsRoleInSet(o *unstructured.Unstructured, roles map[string]bool) bool {
	if o.GroupVersionKind().GroupKind() != (schema.GroupKind{Group: roleKind.Group, Kind: "RoleBinding"}) {
		return false
	}
	kind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
	name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
	return kind == roleKind.Kind && roles[o.GetNamespace()+"/"+name]
}

// checkable reports whether o's kind and namespace exist already; namespaces caches the answers.
func (r *Reconciler) checkable(ctx context.Context, o *unstructured.Unstructured, namespaces map[string]bool) bool {
	gvk := o.GroupVersionKind()
	if _, err := r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
		return false
	}
	ns := o.GetNamespace()
	if ns == "" {
		return true
	}
	exists, known := namespaces[ns]
	if !known {
		exists = r.client.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}) == nil
		namespaces[ns] = exists
	}
	return exists
}

// classifyApply turns an apply error into a step error: what the API server refuses on a
// dry-run stalls until git changes; anything else may pass.
func classifyApply(err error) error {
	var dryRun *ssaerrors.DryRunErr
	if errors.As(err, &dryRun) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return stalled("DryRunFailed", "%w", err)
	}
	return waiting("ApplyFailed", "%w", err)
}

// objectFailure is a sync that failed because of one object, named for notifications.
type objectFailure struct {
	object, cause string
	err           error
}

func (e *objectFailure) Error() string { return e.err.Error() }
func (e *objectFailure) Unwrap() error { return e.err }

// failedObject names the object a sync failed on, and why, when the error says.
func failedObject(err error) (object, cause string) {
	var of *objectFailure
	if errors.As(err, &of) {
		return of.object, of.cause
	}
	var dryRun *ssaerrors.DryRunErr
	if errors.As(err, &dryRun) && dryRun.InvolvedObject() != nil {
		o := dryRun.InvolvedObject()
		return utils.FmtUnstructured(o), dryRun.Unwrap().Error()
	}
	return "", err.Error()
}

// settledOnApply returns the objects of objs that are healthy as soon as their apply
// succeeds, so that the wait after a sync need not read them back: kstatus calls an
// existing object of these kinds Current, because they have no status to wait for (a
// Service has one only as a load balancer, which waits for its address). Skipping them
// spares the API server a GET per ConfigMap, Secret, Service or RBAC object per sync; their
// live state is still read by the health check between syncs (refreshHealth), which also
// sees one deleted, or being deleted, after the sync.
func settledOnApply(objs []*unstructured.Unstructured) map[object.ObjMetadata]bool {
	settled := map[object.ObjMetadata]bool{}
	for _, o := range objs {
		gk := o.GroupVersionKind().GroupKind()
		switch gk {
		case schema.GroupKind{Kind: "ConfigMap"}, schema.GroupKind{Kind: "Secret"}, schema.GroupKind{Kind: "ServiceAccount"},
			roleKind, schema.GroupKind{Group: rbacGroup, Kind: "RoleBinding"},
			schema.GroupKind{Group: rbacGroup, Kind: "ClusterRole"}, schema.GroupKind{Group: rbacGroup, Kind: "ClusterRoleBinding"}:
		case schema.GroupKind{Kind: "Service"}:
			if t, _, _ := unstructured.NestedString(o.Object, "spec", "type"); t == string(corev1.ServiceTypeLoadBalancer) {
				continue
			}
		default:
			continue
		}
		settled[object.ObjMetadata{GroupKind: gk, Namespace: o.GetNamespace(), Name: o.GetName()}] = true
	}
	return settled
}

const rbacGroup = "rbac.authorization.k8s.io"

// toRead is set without the objects settled holds.
func toRead(set object.ObjMetadataSet, settled map[object.ObjMetadata]bool) object.ObjMetadataSet {
	return slices.DeleteFunc(slices.Clone(set), func(id object.ObjMetadata) bool { return settled[id] })
}

// wait blocks until every object in set is healthy (kstatus Current), until one has failed,
// or until the health timeout passes. Each round reads only the objects not yet healthy, one
// GET apiece; a round starts when the owned-object watcher sees one of them change (its
// controller wrote a status, say), or after the poll interval when none did (kinds not
// watched yet, a change the watch missed).
func (r *Reconciler) wait(ctx context.Context, set object.ObjMetadataSet) error {
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, r.opts.HealthTimeout)
	defer cancel()
	pending := slices.Clone(set)
	// Subscribed before the first read, so that no change after it goes unnoticed.
	changed, unsubscribe := r.owned.subscribe(pending)
	defer unsubscribe()
	for {
		var (
			next   object.ObjMetadataSet
			reason string
			worst  string // the first object not healthy, for notifications
		)
		for _, id := range pending {
			res, err := r.objectStatus(ctx, id)
			switch {
			case err != nil && ctx.Err() != nil:
				next = append(next, id)
			case err != nil:
				return err
			case res.Status == status.CurrentStatus:
				continue
			case res.Status == status.FailedStatus:
				return &objectFailure{object: utils.FmtObjMetadata(id), cause: res.Message,
					err: fmt.Errorf("%s failed: %s", utils.FmtObjMetadata(id), res.Message)}
			default:
				next = append(next, id)
				if reason == "" {
					worst = utils.FmtObjMetadata(id)
					reason = fmt.Sprintf("%s is %s: %s", worst, res.Status, res.Message)
				}
			}
		}
		if len(next) == 0 {
			return nil
		}
		pending = next
		pause(outer, func() {
			select {
			case <-ctx.Done():
			case <-changed:
				settle(ctx, changed)
			case <-time.After(r.opts.PollInterval):
			}
		})
		if ctx.Err() != nil {
			if reason == "" {
				reason = utils.FmtObjMetadata(next[0]) + " could not be read"
			}
			err := fmt.Errorf("%d object(s) not healthy within %s; %s", len(next), r.opts.HealthTimeout, reason)
			if worst == "" {
				return err
			}
			return &objectFailure{object: worst, cause: strings.TrimPrefix(reason, worst+" "), err: err}
		}
	}
}

// A workload's controllers write its status several times in a row as they start it (a
// Deployment's when its ReplicaSet is made, scaled and seen), each a change the watch
// reports: after a change, the wait reads again once no other has come for settleQuiet, or
// after settleMax at most, instead of once for each.
const (
	settleQuiet = 50 * time.Millisecond
	settleMax   = 200 * time.Millisecond
)

// settle returns once changed has been quiet for settleQuiet, after settleMax, or when ctx
// ends.
func settle(ctx context.Context, changed <-chan struct{}) {
	limit := time.NewTimer(settleMax)
	defer limit.Stop()
	quiet := time.NewTimer(settleQuiet)
	defer quiet.Stop()
	for {
		select {
		case <-changed:
			quiet.Reset(settleQuiet)
		case <-quiet.C:
			return
		case <-limit.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// objectStatus reads one object and computes its kstatus from the object alone: one GET,
// where kstatus's own poller would also list a Deployment's ReplicaSets and Pods just to
// word its message. A missing object is NotFound, not an error.
func (r *Reconciler) objectStatus(ctx context.Context, id object.ObjMetadata) (*status.Result, error) {
	mapping, err := r.mapper.RESTMapping(id.GroupKind)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", utils.FmtObjMetadata(id), err)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(mapping.GroupVersionKind)
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return &status.Result{Status: status.NotFoundStatus, Message: "not found"}, nil
		}
		return nil, fmt.Errorf("read %s: %w", utils.FmtObjMetadata(id), err)
	}
	return status.Compute(u)
}

// prune deletes stale objects that Ferry labelled as app's and that do not opt out. It returns
// the objects that must stay in the inventory (opted out or not deleted yet) and how many were
// deleted.
func (r *Reconciler) prune(ctx context.Context, app *v1alpha1.Application, stale []v1alpha1.ObjectRef) ([]v1alpha1.ObjectRef, int) {
	var kept []v1alpha1.ObjectRef
	deleted := 0
	opts := ssa.DeleteOptions{
		PropagationPolicy: metav1.DeletePropagationBackground,
		Inclusions:        r.manager.GetOwnerLabels(app.Name, app.Namespace),
		Exclusions:        map[string]string{v1alpha1.AnnotationPrune: "disabled"},
	}
	for _, ref := range stale {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: ref.Group, Version: ref.Version, Kind: ref.Kind})
		u.SetNamespace(ref.Namespace)
		u.SetName(ref.Name)
		entry, err := r.manager.Delete(ctx, u, opts)
		switch {
		case err != nil:
			kept = append(kept, ref)
			r.events.Eventf(app, nil, corev1.EventTypeWarning, "PruneFailed", "Prune", "%s: %v", refString(ref), err)
		case entry.Action == ssa.DeletedAction:
			deleted++
		case entry.Action == ssa.SkippedAction:
			// Opted out with ferry.dev/prune: disabled: Ferry lets go of it.
		}
	}
	return kept, deleted
}

// wave is the objects of one ferry.dev/sync-wave value.
type wave struct {
	number  int
	objects []*unstructured.Unstructured
}

// syncWaves groups objs by their sync wave, ascending.
func syncWaves(objs []*unstructured.Unstructured) ([]wave, error) {
	byNumber := map[int][]*unstructured.Unstructured{}
	for _, o := range objs {
		n := 0
		if v, ok := o.GetAnnotations()[v1alpha1.AnnotationSyncWave]; ok {
			var err error
			if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return nil, stalled("InvalidObject", "%s: annotation %s=%q is not an integer",
					utils.FmtUnstructured(o), v1alpha1.AnnotationSyncWave, v)
			}
		}
		byNumber[n] = append(byNumber[n], o)
	}
	waves := make([]wave, 0, len(byNumber))
	for n, objs := range byNumber {
		waves = append(waves, wave{number: n, objects: objs})
	}
	sort.Slice(waves, func(i, j int) bool { return waves[i].number < waves[j].number })
	return waves, nil
}

func refsOf(cs *ssa.ChangeSet) []v1alpha1.ObjectRef {
	refs := make([]v1alpha1.ObjectRef, 0, len(cs.Entries))
	for _, e := range cs.Entries {
		gv, _ := schema.ParseGroupVersion(e.GroupVersion)
		refs = append(refs, v1alpha1.ObjectRef{
			Group: e.ObjMetadata.GroupKind.Group, Version: gv.Version, Kind: e.ObjMetadata.GroupKind.Kind,
			Namespace: e.ObjMetadata.Namespace, Name: e.ObjMetadata.Name,
		})
	}
	return refs
}

// refKey identifies an object regardless of the API version it was applied with.
func refKey(r v1alpha1.ObjectRef) string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

func refString(r v1alpha1.ObjectRef) string {
	kind := r.Kind
	if r.Group != "" {
		kind += "." + r.Group
	}
	if r.Namespace == "" {
		return kind + "/" + r.Name
	}
	return kind + "/" + r.Namespace + "/" + r.Name
}

// difference returns the refs of a that are not in b.
func difference(a, b []v1alpha1.ObjectRef) []v1alpha1.ObjectRef {
	in := make(map[string]bool, len(b))
	for _, r := range b {
		in[refKey(r)] = true
	}
	var out []v1alpha1.ObjectRef
	for _, r := range a {
		if !in[refKey(r)] {
			out = append(out, r)
		}
	}
	return out
}

// union returns old plus what cs applied, each object once.
func union(old []v1alpha1.ObjectRef, cs *ssa.ChangeSet) []v1alpha1.ObjectRef {
	applied := refsOf(cs)
	return append(applied, difference(old, applied)...)
}

// environment is the environment releases of app are recorded in.
func environment(app *v1alpha1.Application) string {
	if app.Spec.Environment != "" {
		return app.Spec.Environment
	}
	return app.Spec.Destination.Namespace
}
