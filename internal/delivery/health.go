package delivery

import (
	"context"
	"fmt"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/ssa"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/delivery/source"
	"github.com/ferrycd/ferry/internal/release"
)

// healthRank orders health states from best to worst; an Application is as healthy as its
// worst object.
var healthRank = map[v1alpha1.HealthState]int{
	v1alpha1.HealthHealthy:     0,
	v1alpha1.HealthSuspended:   1,
	v1alpha1.HealthProgressing: 2,
	v1alpha1.HealthUnknown:     3,
	v1alpha1.HealthMissing:     4,
	v1alpha1.HealthDegraded:    5,
}

// healthOf maps a kstatus result to an Application health state.
func healthOf(s status.Status) v1alpha1.HealthState {
	switch s {
	case status.CurrentStatus:
		return v1alpha1.HealthHealthy
	case status.InProgressStatus, status.TerminatingStatus:
		return v1alpha1.HealthProgressing
	case status.FailedStatus:
		return v1alpha1.HealthDegraded
	case status.NotFoundStatus:
		return v1alpha1.HealthMissing
	default:
		return v1alpha1.HealthUnknown
	}
}

// ObjectHealth is the health of one live object, computed with kstatus as the
// Application's health is, and kstatus's message saying why.
func ObjectHealth(u *unstructured.Unstructured) (v1alpha1.HealthState, string) {
	res, err := status.Compute(u)
	if err != nil {
		return v1alpha1.HealthUnknown, err.Error()
	}
	return healthOf(res.Status), res.Message
}

// refreshHealth sets status.health from the live state of every inventoried object, computed
// with kstatus. The message names the worst object and why.
func (r *Reconciler) refreshHealth(ctx context.Context, app *v1alpha1.Application) error {
	worst := v1alpha1.HealthStatus{Status: v1alpha1.HealthHealthy}
	for _, ref := range app.Status.Inventory {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: ref.Group, Version: ref.Version, Kind: ref.Kind})
		var (
			state v1alpha1.HealthState
			msg   string
		)
		err := r.client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, u)
		switch {
		case apierrors.IsNotFound(err):
			state, msg = v1alpha1.HealthMissing, "not found"
		case err != nil:
			return waiting("HealthCheckFailed", "read %s: %w", refString(ref), err)
		default:
			state, msg = ObjectHealth(u)
		}
		if healthRank[state] > healthRank[worst.Status] {
			worst = v1alpha1.HealthStatus{Status: state, Message: trimMessage(fmt.Sprintf("%s: %s", refString(ref), msg))}
		}
	}
	setHealth(app, worst)
	return nil
}

// checkDrift compares the cluster with the synced revision. With selfHeal it re-applies what
// drifted (changed by hand, or deleted) and notes that on the release's timeline; without, it
// only reports OutOfSync.
func (r *Reconciler) checkDrift(ctx context.Context, app *v1alpha1.Application, art source.Artifact) error {
	objs, vault, err := r.desired(ctx, app, art)
	if err != nil {
		return err
	}
	if vault.revision != app.Status.SecretsRevision {
		if err := r.rotate(ctx, app, vault); err != nil {
			return err
		}
	}
	// Hooks run during syncs only; they are not kept in sync.
	if objs, _, err = splitHooks(objs); err != nil {
		return err
	}
	if app.Spec.SyncPolicy.SelfHeal {
		cs, err := r.manager.ApplyAllStaged(ctx, objs, r.applyOptions())
		if err != nil {
			return classifyApply(err)
		}
		var fixed []string
		for _, e := range cs.Entries {
			if e.Action == ssa.CreatedAction || e.Action == ssa.ConfiguredAction {
				fixed = append(fixed, e.Subject)
			}
		}
		app.Status.Sync.Status = v1alpha1.SyncSynced
		if len(fixed) > 0 {
			msg := fmt.Sprintf("drift undone on %d object(s): %s", len(fixed), joinLimited(fixed, 10))
			r.record(ctx, app, app.Status.History[0].ReleaseID, occurrence{typ: release.EventDeployDriftCorrected,
				eventType: corev1.EventTypeNormal, reason: "DriftCorrected", msg: msg})
		}
		return nil
	}
	var drifted []string
	for _, o := range objs {
		entry, _, _, err := r.manager.Diff(ctx, o, ssa.DefaultDiffOptions())
		if err != nil {
			return classifyApply(err)
		}
		if entry.Action != ssa.UnchangedAction && entry.Action != ssa.SkippedAction {
			drifted = append(drifted, entry.Subject)
		}
	}
	if len(drifted) > 0 {
		app.Status.Sync.Status = v1alpha1.SyncOutOfSync
		setCondition(app, v1alpha1.ConditionReady, metav1.ConditionFalse, "Drifted",
			fmt.Sprintf("%d object(s) differ from git and selfHeal is off: %s", len(drifted), joinLimited(drifted, 10)))
		return nil
	}
	app.Status.Sync.Status = v1alpha1.SyncSynced
	return nil
}

// rotate applies the objects that carry Vault data after a referenced path got a new
// version: the workloads concerned roll, resolved Secrets get the new values. It is recorded on
// the release's timeline. Nothing else is applied, so with selfHeal off, drift stays as it is.
func (r *Reconciler) rotate(ctx context.Context, app *v1alpha1.Application, vault vaultState) error {
	objs, _, err := splitHooks(vault.objects)
	if err != nil {
		return err
	}
	cs, err := r.manager.ApplyAllStaged(ctx, objs, r.applyOptions())
	if err != nil {
		return classifyApply(err)
	}
	var changed []string
	for _, e := range cs.Entries {
		if e.Action == ssa.CreatedAction || e.Action == ssa.ConfiguredAction {
			changed = append(changed, e.Subject)
		}
	}
	app.Status.SecretsRevision = vault.revision
	if len(changed) > 0 && len(app.Status.History) > 0 {
		r.record(ctx, app, app.Status.History[0].ReleaseID, occurrence{typ: release.EventSecretRotated,
			eventType: corev1.EventTypeNormal, reason: "SecretRotated", key: "secret.rotated/" + vault.revision,
			msg: fmt.Sprintf("secret rotated: a Vault path got a new version; rolled %d object(s): %s", len(changed), joinLimited(changed, 10))})
	}
	return nil
}

// setSteadyReady sets Ready for an Application whose revision is applied: True when it is in
// sync and healthy, otherwise False with the reason.
func setSteadyReady(app *v1alpha1.Application) {
	switch {
	case app.Status.Sync.Status != v1alpha1.SyncSynced:
		// checkDrift has said why.
	case app.Status.Health.Status != v1alpha1.HealthHealthy:
		setCondition(app, v1alpha1.ConditionReady, metav1.ConditionFalse, "Unhealthy",
			fmt.Sprintf("%s: %s", app.Status.Health.Status, app.Status.Health.Message))
	default:
		setCondition(app, v1alpha1.ConditionReady, metav1.ConditionTrue, "Synced",
			fmt.Sprintf("revision %s applied and healthy", short(app.Status.Sync.Revision)))
	}
}

// joinLimited joins at most n items, saying how many more there are.
func joinLimited(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
