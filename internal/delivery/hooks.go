package delivery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
)

// hookPhase is when a hook object runs during a sync.
type hookPhase string

// The hook phases, as in Argo CD: PreSync before anything is applied (migrations; a failure
// stops the sync), PostSync once everything is healthy (smoke tests; a failure fails the
// release), SyncFail when the sync has failed (clean-up, alerts).
const (
	hookPreSync  hookPhase = "PreSync"
	hookPostSync hookPhase = "PostSync"
	hookSyncFail hookPhase = "SyncFail"
)

// The delete policies of hook objects. The default, BeforeHookCreation, replaces the object
// left by the last sync, so an immutable Job can run again.
const (
	deleteBeforeCreation = "BeforeHookCreation"
	deleteOnSuccess      = "HookSucceeded"
	deleteOnFailure      = "HookFailed"
)

// hooks are the hook objects of a revision, by phase. They are not part of the inventory:
// they are run, not kept in sync, and never pruned.
type hooks map[hookPhase][]*unstructured.Unstructured

// splitHooks separates the hook objects (annotation ferry.dev/hook) from the rest.
func splitHooks(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, hooks, error) {
	rest := objs[:0:0]
	hs := hooks{}
	for _, o := range objs {
		v, ok := o.GetAnnotations()[v1alpha1.AnnotationHook]
		if !ok {
			rest = append(rest, o)
			continue
		}
		for p := range strings.SplitSeq(v, ",") {
			switch phase := hookPhase(strings.TrimSpace(p)); phase {
			case hookPreSync, hookPostSync, hookSyncFail:
				hs[phase] = append(hs[phase], o)
			default:
				return nil, nil, stalled("InvalidObject", "%s: annotation %s=%q: want PreSync, PostSync or SyncFail",
					utils.FmtUnstructured(o), v1alpha1.AnnotationHook, v)
			}
		}
	}
	return rest, hs, nil
}

// run applies the hooks of one phase, wave by wave, and waits for each wave to succeed (a Job to
// complete). The first failure ends the phase.
func (r *Reconciler) runHooks(ctx context.Context, app *v1alpha1.Application, phase hookPhase, objs []*unstructured.Unstructured) error {
	if len(objs) == 0 {
		return nil
	}
	waves, err := syncWaves(objs)
	if err != nil {
		return err
	}
	for _, w := range waves {
		for _, o := range w.objects {
			if policyOf(o, deleteBeforeCreation) {
				if err := r.deleteAndWait(ctx, o); err != nil {
					return waiting(string(phase)+"Failed", "%s hook %s: replace: %w", phase, utils.FmtUnstructured(o), err)
				}
			}
			if _, err := r.manager.Apply(ctx, o.DeepCopy(), r.applyOptions()); err != nil {
				return stalled(string(phase)+"Failed", "%s hook %s: %w", phase, utils.FmtUnstructured(o), err)
			}
		}
		var err error
		for _, o := range w.objects {
			if err = r.waitHook(ctx, o); err != nil {
				break
			}
		}
		for _, o := range w.objects {
			if (err == nil && policyOf(o, deleteOnSuccess)) || (err != nil && policyOf(o, deleteOnFailure)) {
				_, _ = r.manager.Delete(ctx, o, ssa.DeleteOptions{PropagationPolicy: metav1.DeletePropagationBackground})
			}
		}
		if err != nil {
			return stalled(string(phase)+"Failed", "%s hook failed: %w", phase, err)
		}
	}
	r.events.Eventf(app, nil, corev1.EventTypeNormal, string(phase)+"Succeeded", "Hook", "%d %s hook(s) succeeded", len(objs), phase)
	return nil
}

// waitHook waits until hook o has finished: a Job until it is Complete or Failed (kstatus calls
// a running Job current, which is not enough for a migration or a smoke test), anything else
// until kstatus calls it current.
func (r *Reconciler) waitHook(ctx context.Context, o *unstructured.Unstructured) error {
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, r.opts.HealthTimeout)
	defer cancel()
	changed, unsubscribe := r.changesOf(ctx, o)
	defer unsubscribe()
	isJob := o.GroupVersionKind().GroupKind() == schema.GroupKind{Group: "batch", Kind: "Job"}
	for {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := r.client.Get(ctx, client.ObjectKeyFromObject(o), live)
		if err == nil {
			if isJob {
				if done, err := jobFinished(live); done {
					return err
				}
			} else if res, err := status.Compute(live); err == nil {
				switch res.Status {
				case status.CurrentStatus:
					return nil
				case status.FailedStatus:
					return fmt.Errorf("%s: %s", utils.FmtUnstructured(o), res.Message)
				}
			}
		}
		pause(outer, func() {
			select {
			case <-ctx.Done():
			case <-changed:
			case <-time.After(r.opts.PollInterval):
			}
		})
		if ctx.Err() != nil {
			return fmt.Errorf("%s did not finish within %s", utils.FmtUnstructured(o), r.opts.HealthTimeout)
		}
	}
}

// changesOf watches the kind of o, if it is not watched yet, and subscribes to o's changes
// (see ownedWatcher.subscribe), so that a wait on a hook reads it again as soon as it changes.
// Hooks carry Ferry's owner labels, as every rendered object does.
func (r *Reconciler) changesOf(ctx context.Context, o *unstructured.Unstructured) (<-chan struct{}, func()) {
	gvk := o.GroupVersionKind()
	r.owned.ensure(ctx, []v1alpha1.ObjectRef{{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind,
		Namespace: o.GetNamespace(), Name: o.GetName()}})
	return r.owned.subscribe(object.ObjMetadataSet{object.UnstructuredToObjMetadata(o)})
}

// jobFinished reports whether a Job has a Complete or Failed condition, and the failure.
func jobFinished(job *unstructured.Unstructured) (bool, error) {
	conds, _, _ := unstructured.NestedSlice(job.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["status"] != "True" {
			continue
		}
		switch m["type"] {
		case "Complete":
			return true, nil
		case "Failed":
			return true, fmt.Errorf("%s failed: %v: %v", utils.FmtUnstructured(job), m["reason"], m["message"])
		}
	}
	return false, nil
}

// policyOf reports whether hook o has delete policy p (BeforeHookCreation when it names none).
func policyOf(o *unstructured.Unstructured, p string) bool {
	v, ok := o.GetAnnotations()[v1alpha1.AnnotationHookDeletePolicy]
	if !ok {
		return p == deleteBeforeCreation
	}
	return slices.ContainsFunc(strings.Split(v, ","), func(s string) bool { return strings.TrimSpace(s) == p })
}

// deleteAndWait deletes o, if it exists, and waits until it is gone.
func (r *Reconciler) deleteAndWait(ctx context.Context, o *unstructured.Unstructured) error {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	if err := r.client.Get(ctx, client.ObjectKeyFromObject(o), live); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if _, err := r.manager.Delete(ctx, live, ssa.DeleteOptions{PropagationPolicy: metav1.DeletePropagationForeground}); err != nil {
		return err
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, r.opts.HealthTimeout)
	defer cancel()
	changed, unsubscribe := r.changesOf(ctx, o)
	defer unsubscribe()
	for {
		err := r.client.Get(ctx, client.ObjectKeyFromObject(o), live)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("still there after %s", r.opts.HealthTimeout)
		}
		pause(outer, func() {
			select {
			case <-ctx.Done():
			case <-changed:
			case <-time.After(r.opts.PollInterval):
			}
		})
	}
}

// syncFailed runs the SyncFail hooks of a failed sync, best effort, and returns the sync's error.
func (r *Reconciler) syncFailed(ctx context.Context, app *v1alpha1.Application, hs hooks, err error) error {
	if hookErr := r.runHooks(ctx, app, hookSyncFail, hs[hookSyncFail]); hookErr != nil {
		r.events.Eventf(app, nil, corev1.EventTypeWarning, "SyncFailHookFailed", "Hook", "%v", hookErr)
	}
	return err
}
