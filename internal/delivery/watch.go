package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	authorizationv1 "k8s.io/api/authorization/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ferrycd/ferry/api/v1alpha1"
)

// ownedWatcher watches the objects Ferry applied, so drift made by hand is seen within
// seconds instead of at the next poll. It keeps one metadata-only informer per kind, started
// the first time an inventory holds that kind, and selecting only objects that carry Ferry's
// owner labels. A change by anyone but Ferry, or a deletion, enqueues the owning Application;
// its reconcile then checks drift (and undoes it with selfHeal).
//
// The same informers wake a sync waiting for its objects' health (subscribe) whenever one
// of them changes, status included, so the wait reads an object again as soon as its
// controller has moved it on rather than at the next poll.
//
// Kinds Ferry may not list and watch cluster-wide are left to the poll, and so are Secrets
// always: Ferry keeps no cluster-wide view of them, not even their metadata.
type ownedWatcher struct {
	cache      cache.Cache
	controller controller.Controller
	client     client.Client
	mapper     apimeta.RESTMapper
	log        *slog.Logger

	// namespaces limits the Applications enqueued; empty means all.
	namespaces map[string]bool

	mu sync.Mutex
	// kinds holds the kinds watched, being set up, or left to the poll.
	kinds map[schema.GroupVersionKind]struct{}

	subsMu sync.Mutex
	// subs holds, per object, the channels of the waits subscribed to its changes.
	subs map[object.ObjMetadata]map[chan struct{}]struct{}
}

// The owner labels fluxcd/pkg/ssa sets on every object Ferry applies.
var (
	ownerNameLabel      = v1alpha1.GroupVersion.Group + "/name"
	ownerNamespaceLabel = v1alpha1.GroupVersion.Group + "/namespace"
)

// newOwnedWatcher adds a label-selected metadata cache to mgr and returns a watcher feeding c.
// Only Applications in namespaces (all when empty) are enqueued.
func newOwnedWatcher(mgr ctrl.Manager, c controller.Controller, namespaces []string, log *slog.Logger) (*ownedWatcher, error) {
	sel := labels.NewSelector()
	for _, k := range []string{ownerNameLabel, ownerNamespaceLabel} {
		req, err := labels.NewRequirement(k, selection.Exists, nil)
		if err != nil {
			return nil, err
		}
		sel = sel.Add(*req)
	}
	ca, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:           mgr.GetHTTPClient(),
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: sel,
	})
	if err != nil {
		return nil, fmt.Errorf("owned object cache: %w", err)
	}
	if err := mgr.Add(ca); err != nil {
		return nil, err
	}
	nsSet := map[string]bool{}
	for _, ns := range namespaces {
		nsSet[ns] = true
	}
	return &ownedWatcher{cache: ca, controller: c, client: mgr.GetClient(), mapper: mgr.GetRESTMapper(), log: log,
		namespaces: nsSet, kinds: map[schema.GroupVersionKind]struct{}{},
		subs: map[object.ObjMetadata]map[chan struct{}]struct{}{}}, nil
}

// subscribe returns a channel that receives (without blocking the sender; one pending
// signal at most) whenever the informer of a watched kind sees one of ids created, changed or
// deleted, and a function that ends the subscription. Objects of kinds not watched yet
// never signal: their waits fall back on the poll. A nil watcher returns a nil channel.
func (w *ownedWatcher) subscribe(ids object.ObjMetadataSet) (<-chan struct{}, func()) {
	if w == nil || len(ids) == 0 {
		return nil, func() {}
	}
	ch := make(chan struct{}, 1)
	w.subsMu.Lock()
	for _, id := range ids {
		if w.subs[id] == nil {
			w.subs[id] = map[chan struct{}]struct{}{}
		}
		w.subs[id][ch] = struct{}{}
	}
	w.subsMu.Unlock()
	return ch, func() {
		w.subsMu.Lock()
		defer w.subsMu.Unlock()
		for _, id := range ids {
			delete(w.subs[id], ch)
			if len(w.subs[id]) == 0 {
				delete(w.subs, id)
			}
		}
	}
}

// changed signals the waits subscribed to the object o of kind gk.
func (w *ownedWatcher) changed(gk schema.GroupKind, o any) {
	if tomb, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = tomb.Obj
	}
	m, ok := o.(metav1.Object)
	if !ok {
		return
	}
	id := object.ObjMetadata{GroupKind: gk, Namespace: m.GetNamespace(), Name: m.GetName()}
	w.subsMu.Lock()
	defer w.subsMu.Unlock()
	for ch := range w.subs[id] {
		select {
		case ch <- struct{}{}:
		default: // a signal is pending already
		}
	}
}

// ensure watches every kind of inventory not yet watched or refused. A kind Ferry may not
// list and watch stays on the poll; one whose check failed for another reason (the API server
// busy, the reconcile's context ending) is tried again by a later reconcile.
func (w *ownedWatcher) ensure(ctx context.Context, inventory []v1alpha1.ObjectRef) {
	if w == nil {
		return
	}
	for _, ref := range inventory {
		gvk := schema.GroupVersionKind{Group: ref.Group, Version: ref.Version, Kind: ref.Kind}
		w.mu.Lock()
		_, seen := w.kinds[gvk]
		w.kinds[gvk] = struct{}{}
		w.mu.Unlock()
		if seen {
			continue
		}
		err := w.watch(ctx, gvk)
		switch {
		case err == nil:
		case errors.Is(err, errNotWatchable):
			w.log.Info("drift of this kind is found by polling only", "kind", gvk.String(), "reason", err)
		default:
			w.log.Debug("cannot watch this kind yet", "kind", gvk.String(), "error", err)
			w.mu.Lock()
			delete(w.kinds, gvk)
			w.mu.Unlock()
		}
	}
}

// errNotWatchable means a kind is left to the poll for good.
var errNotWatchable = errors.New("not watchable")

func (w *ownedWatcher) watch(ctx context.Context, gvk schema.GroupVersionKind) error {
	if gvk.Group == "" && gvk.Kind == "Secret" {
		return fmt.Errorf("%w: secrets are never listed", errNotWatchable)
	}
	mapping, err := w.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	for _, verb := range []string{"list", "watch"} {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: verb, Group: gvk.Group, Version: gvk.Version, Resource: mapping.Resource.Resource,
			},
		}}
		if err := w.client.Create(ctx, review); err != nil {
			return fmt.Errorf("check access: %w", err)
		}
		if !review.Status.Allowed {
			return fmt.Errorf("%w: not allowed to %s %s in all namespaces", errNotWatchable, verb, mapping.Resource.Resource)
		}
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	// The informer's first list reports every existing object as created. Those created before
	// the watch began get one reconcile, so drift made while the informer was starting is not
	// lost; objects created later are Ferry's own doing.
	started := time.Now()
	informer, err := w.cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	gk := gvk.GroupKind()
	notify := func(o any) { w.changed(gk, o) }
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, o any) { notify(o) },
		DeleteFunc: notify,
	}); err != nil {
		return err
	}
	return w.controller.Watch(source.Kind(w.cache, obj,
		handler.TypedEnqueueRequestsFromMapFunc(w.owner), predicate.TypedFuncs[*metav1.PartialObjectMetadata]{
			CreateFunc: func(e event.TypedCreateEvent[*metav1.PartialObjectMetadata]) bool {
				return !isHook(e.Object) && !e.Object.CreationTimestamp.After(started)
			},
			UpdateFunc: func(e event.TypedUpdateEvent[*metav1.PartialObjectMetadata]) bool {
				return changedByHand(e.ObjectOld, e.ObjectNew)
			},
			DeleteFunc:  func(e event.TypedDeleteEvent[*metav1.PartialObjectMetadata]) bool { return !isHook(e.Object) },
			GenericFunc: func(event.TypedGenericEvent[*metav1.PartialObjectMetadata]) bool { return false },
		}))
}

// owner maps an owned object to its Application.
func (w *ownedWatcher) owner(_ context.Context, o *metav1.PartialObjectMetadata) []reconcile.Request {
	name, ns := o.Labels[ownerNameLabel], o.Labels[ownerNamespaceLabel]
	if name == "" || ns == "" || (len(w.namespaces) > 0 && !w.namespaces[ns]) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}}}
}

// isHook reports whether o is a sync hook: hooks come and go during syncs by design.
func isHook(o *metav1.PartialObjectMetadata) bool {
	_, ok := o.Annotations[v1alpha1.AnnotationHook]
	return ok
}

// changedByHand reports whether an update to an owned object may be drift. For kinds with a
// spec generation, only a new generation counts (status and controller bookkeeping do not
// bump it); for the others (ConfigMaps, Services), a write by any field manager but Ferry
// that is not a status write. Ferry's own applies never count.
func changedByHand(old, cur *metav1.PartialObjectMetadata) bool {
	if isHook(cur) || !cur.DeletionTimestamp.IsZero() {
		return false
	}
	if cur.Generation > 0 && cur.Generation == old.Generation {
		return false
	}
	before := map[string]metav1.ManagedFieldsEntry{}
	for _, e := range old.ManagedFields {
		before[e.Manager+"\x00"+string(e.Operation)+"\x00"+e.Subresource] = e
	}
	for _, e := range cur.ManagedFields {
		if e.Manager == FieldManager || e.Subresource == "status" {
			continue
		}
		prev, ok := before[e.Manager+"\x00"+string(e.Operation)+"\x00"+e.Subresource]
		if !ok || !prev.Time.Equal(e.Time) || !bytes.Equal(prev.FieldsV1.GetRawBytes(), e.FieldsV1.GetRawBytes()) {
			return true
		}
	}
	return false
}
