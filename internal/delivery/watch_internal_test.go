package delivery

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycd/ferry/api/v1alpha1"
)

func TestChangedByHand(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	fields := metav1.NewFieldsV1
	entry := func(manager, sub string, at metav1.Time, f string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate,
			Subresource: sub, Time: &at, FieldsV1: fields(f)}
	}
	obj := func(gen int64, mf ...metav1.ManagedFieldsEntry) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Generation: gen, ManagedFields: mf}}
	}
	ferry := metav1.ManagedFieldsEntry{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, Time: &t0, FieldsV1: fields(`{"f:spec":{}}`)}
	ferryLater := ferry
	ferryLater.Time = &t1
	hook := obj(2, entry("kubectl", "", t1, "{}"))
	hook.Annotations = map[string]string{v1alpha1.AnnotationHook: "PreSync"}

	for _, tc := range []struct {
		name     string
		old, cur *metav1.PartialObjectMetadata
		want     bool
	}{
		{"status write keeps the generation", obj(1, ferry), obj(1, ferry, entry("kube-controller-manager", "status", t1, "{}")), false},
		{"controller bookkeeping keeps the generation", obj(1, ferry), obj(1, ferry, entry("kube-controller-manager", "", t1, "{}")), false},
		{"Ferry's own apply", obj(1, ferry), obj(2, ferryLater), false},
		{"kubectl scale", obj(1, ferry), obj(2, ferry, entry("kubectl", "scale", t1, `{"f:spec":{"f:replicas":{}}}`)), true},
		{"kubectl edit of a ConfigMap", obj(0, ferry), obj(0, ferry, entry("kubectl-edit", "", t1, `{"f:data":{}}`)), true},
		{"second edit by the same manager", obj(0, ferry, entry("kubectl-edit", "", t0, `{"f:data":{}}`)),
			obj(0, ferry, entry("kubectl-edit", "", t1, `{"f:data":{}}`)), true},
		{"status write to a ConfigMap-like kind", obj(0, ferry), obj(0, ferry, entry("x", "status", t1, "{}")), false},
		{"nothing changed", obj(0, ferry, entry("kubectl-edit", "", t0, "{}")), obj(0, ferry, entry("kubectl-edit", "", t0, "{}")), false},
		{"hook", obj(1), hook, false},
	} {
		if got := changedByHand(tc.old, tc.cur); got != tc.want {
			t.Errorf("%s: changedByHand = %v, want %v", tc.name, got, tc.want)
		}
	}
}
