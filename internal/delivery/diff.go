package delivery

import (
	"context"
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"sigs.k8s.io/yaml"

	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ferrycd/ferry/api/v1alpha1"
)

// ObjectDiff is one object a sync would change.
type ObjectDiff struct {
	// Subject names the object: Kind/namespace/name.
	Subject string
	// Action is "create", "update" or "delete" (a prune).
	Action string
	// Live is the object in the cluster (nil for create); Merged what it would be after the
	// sync (nil for delete). Secret values are masked in both.
	Live, Merged *unstructured.Unstructured
}

// Diff reports what syncing app now would change, from a server-side dry-run of every object
// against the live cluster, without changing anything. It returns the revision compared.
func (r *Reconciler) Diff(ctx context.Context, app *v1alpha1.Application) (string, []ObjectDiff, error) {
	revision := app.Spec.Source.Revision
	if pin := app.Annotations[v1alpha1.AnnotationRollbackTo]; pin != "" {
		revision = pin
	}
	art, err := r.fetch(ctx, app, revision, 0)
	if err != nil {
		return "", nil, err
	}
	objs, _, err := r.desired(ctx, app, art)
	if err != nil {
		return art.Revision, nil, err
	}
	if objs, _, err = splitHooks(objs); err != nil {
		return art.Revision, nil, err
	}
	var diffs []ObjectDiff
	var desired []v1alpha1.ObjectRef
	for _, o := range objs {
		entry, live, merged, err := r.manager.Diff(ctx, o, ssa.DefaultDiffOptions())
		if err != nil {
			return art.Revision, nil, classifyApply(err)
		}
		gvk := o.GroupVersionKind()
		desired = append(desired, v1alpha1.ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind,
			Namespace: o.GetNamespace(), Name: o.GetName()})
		switch entry.Action {
		case ssa.CreatedAction:
			// The API server returns nothing for an object it would create: show git's.
			diffs = append(diffs, ObjectDiff{Subject: entry.Subject, Action: "create", Merged: masked(o)})
		case ssa.ConfiguredAction:
			diffs = append(diffs, ObjectDiff{Subject: entry.Subject, Action: "update", Live: live, Merged: merged})
		}
	}
	if app.Spec.SyncPolicy.Prune {
		for _, ref := range difference(app.Status.Inventory, desired) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(schema.GroupVersionKind{Group: ref.Group, Version: ref.Version, Kind: ref.Kind})
			u.SetNamespace(ref.Namespace)
			u.SetName(ref.Name)
			diffs = append(diffs, ObjectDiff{Subject: refString(ref), Action: "delete", Live: u})
		}
	}
	return art.Revision, diffs, nil
}

// masked returns o with the values of a Secret replaced, so a diff never prints them.
func masked(o *unstructured.Unstructured) *unstructured.Unstructured {
	o = o.DeepCopy()
	if o.GroupVersionKind().GroupKind() != (schema.GroupKind{Kind: "Secret"}) {
		return o
	}
	for _, field := range []string{"data", "stringData"} {
		values, ok, _ := unstructured.NestedMap(o.Object, field)
		if !ok {
			continue
		}
		for k := range values {
			values[k] = "***"
		}
		_ = unstructured.SetNestedMap(o.Object, values, field)
	}
	return o
}

// Unified renders d as a unified diff from the live object to git's, without the fields the
// API server manages, which only add noise. A prune shows as a note rather than a deletion
// of every line.
func (d ObjectDiff) Unified() (string, error) {
	if d.Action == "delete" {
		return fmt.Sprintf("--- live/%s\n+++ git/%s\n(pruned: no longer in git)\n", d.Subject, d.Subject), nil
	}
	live, merged := "", ""
	var err error
	if d.Action != "create" {
		if live, err = diffYAML(d.Live); err != nil {
			return "", err
		}
	}
	if merged, err = diffYAML(d.Merged); err != nil {
		return "", err
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(live), B: difflib.SplitLines(merged),
		FromFile: "live/" + d.Subject, ToFile: "git/" + d.Subject, Context: 3,
	})
}

// diffYAML prints an object for a diff, without the fields the API server manages.
func diffYAML(u *unstructured.Unstructured) (string, error) {
	o := u.DeepCopy()
	o.SetManagedFields(nil)
	o.SetResourceVersion("")
	o.SetGeneration(0)
	o.SetUID("")
	unstructured.RemoveNestedField(o.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(o.Object, "status")
	b, err := yaml.Marshal(o.Object)
	return strings.TrimSpace(string(b)) + "\n", err
}
