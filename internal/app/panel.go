package app

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/panel"
	"github.com/ferrycd/ferry/internal/store"
)

// sessionPurgeInterval is how often ended sessions are deleted from the store.
const sessionPurgeInterval = time.Hour

// newSessions loads (or on the first start generates) the session key, makes sure the
// configured admin exists, and returns the session manager with the worker that deletes
// ended sessions.
func newSessions(ctx context.Context, cfg config.Config, db *store.DB, log *slog.Logger) (*auth.Manager, worker, error) {
	key, err := sessionKey(cfg)
	if err != nil {
		return nil, worker{}, err
	}
	if err := ensureAdmin(ctx, cfg, db, log); err != nil {
		return nil, worker{}, err
	}
	m, err := auth.NewManager(db, key, auth.Options{SessionLifetime: cfg.Panel.SessionLifetime,
		SecureCookie: cfg.Panel.SecureCookie, Logger: log.With("component", "panel")})
	if err != nil {
		return nil, worker{}, err
	}
	purge := worker{"sessions", func(ctx context.Context) error {
		t := time.NewTicker(sessionPurgeInterval)
		defer t.Stop()
		for {
			if _, err := db.PurgeSessions(ctx, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("delete ended sessions", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}}
	return m, purge, nil
}

// sessionKey reads panel.session_key_file: 32 bytes, raw, hex or base64. Without one,
// the key lives in DATA_DIR/session.key, generated on the first start.
func sessionKey(cfg config.Config) ([]byte, error) {
	path := cfg.Panel.SessionKeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, "session.key")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			key := make([]byte, auth.KeySize)
			_, _ = rand.Read(key)
			if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("panel: write session key: %w", err)
			}
			return key, nil
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("panel: session key: %w", err)
	}
	if len(b) == auth.KeySize {
		return b, nil
	}
	text := string(bytes.TrimSpace(b))
	for _, decode := range []func(string) ([]byte, error){hex.DecodeString, base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString, base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString} {
		if key, err := decode(text); err == nil && len(key) == auth.KeySize {
			return key, nil
		}
	}
	return nil, fmt.Errorf("panel: session key %s: want %d bytes, raw, hex or base64 (openssl rand -base64 32)", path, auth.KeySize)
}

// ensureAdmin creates the configured admin unless a user of that name exists. Its first
// password comes from panel.admin_password_file or, without one, is generated into
// DATA_DIR/admin-password, which the log names (never the password itself).
func ensureAdmin(ctx context.Context, cfg config.Config, db *store.DB, log *slog.Logger) error {
	name := cfg.Panel.AdminUser
	if file := cfg.Panel.AdminPasswordFile; file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("panel: admin password: %w", err)
		}
		created, err := auth.EnsureAdmin(ctx, db, name, string(bytes.TrimRight(b, "\r\n")))
		if err != nil {
			return fmt.Errorf("panel: %w", err)
		}
		if created {
			log.Info("panel admin created", "user", name, "password_file", file)
		}
		return nil
	}
	if _, err := db.GetUserByName(ctx, name); err == nil {
		return nil
	} else if !errors.Is(err, auth.ErrNotFound) {
		return fmt.Errorf("panel: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "admin-password")
	pw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 18)
		_, _ = rand.Read(raw)
		pw = []byte(base64.RawURLEncoding.EncodeToString(raw))
		if err := os.WriteFile(path, append(pw, '\n'), 0o600); err != nil {
			return fmt.Errorf("panel: write admin password: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("panel: admin password: %w", err)
	}
	if _, err := auth.EnsureAdmin(ctx, db, name, string(bytes.TrimSpace(pw))); err != nil {
		return fmt.Errorf("panel: %w", err)
	}
	log.Info("panel admin created; its first password is in the file named here", "user", name, "password_file", path)
	return nil
}

// clusterApps is the panel's view of the Applications: the delivery engine's cache for
// lists, the API server for live objects, and the reconciler for dry-run diffs.
type clusterApps struct {
	engine *delivery.Engine
}

// watchApps publishes a change to the panel's live lists whenever an Application changes.
// It runs with the delivery engine's manager, on every replica (the panel is not the
// leader's alone), once the CRDs are installed and the cache is started.
func watchApps(e *delivery.Engine, live *panel.Broker) error {
	return e.Manager.Add(everyReplica(func(ctx context.Context) error {
		// Until the API server answers and knows the CRD, try again: an unreachable API
		// server makes the process unready, never stops it.
		inf, err := e.Manager.GetCache().GetInformer(ctx, &v1alpha1.Application{})
		for err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Second):
			}
			inf, err = e.Manager.GetCache().GetInformer(ctx, &v1alpha1.Application{})
		}
		publish := func(any) { live.Publish(panel.TopicApps) }
		reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: publish, DeleteFunc: publish,
			UpdateFunc: func(_, obj any) { publish(obj) },
		})
		if err != nil {
			return fmt.Errorf("panel: watch applications: %w", err)
		}
		<-ctx.Done()
		return inf.RemoveEventHandler(reg)
	}))
}

// everyReplica is a manager runnable that runs without the leader lease.
type everyReplica func(ctx context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (everyReplica) NeedLeaderElection() bool          { return false }

func (c clusterApps) List(ctx context.Context) ([]v1alpha1.Application, error) {
	var list v1alpha1.ApplicationList
	if err := c.engine.Manager.GetClient().List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return list.Items, nil
}

func (c clusterApps) Get(ctx context.Context, namespace, name string) (*v1alpha1.Application, error) {
	var app v1alpha1.Application
	err := c.engine.Manager.GetClient().Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &app)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: application %s/%s", auth.ErrNotFound, namespace, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get application %s/%s: %w", namespace, name, err)
	}
	return &app, nil
}

func (c clusterApps) Patch(ctx context.Context, namespace, name string, patch map[string]any) error {
	app := &v1alpha1.Application{}
	app.Namespace, app.Name = namespace, name
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	err = c.engine.Manager.GetClient().Patch(ctx, app, client.RawPatch("application/merge-patch+json", raw))
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: application %s/%s", auth.ErrNotFound, namespace, name)
	}
	return err
}

func (c clusterApps) Diff(ctx context.Context, app *v1alpha1.Application) (string, []delivery.ObjectDiff, error) {
	return c.engine.Reconciler.Diff(ctx, app)
}

// workloads are the kinds whose Pods the object tree shows under them.
var workloads = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "Job": true, "ReplicaSet": true}

// maxPods bounds the Pods shown under one workload.
const maxPods = 50

// Objects reads every inventoried object from the API server with its health, and the
// Pods of each workload under it.
func (c clusterApps) Objects(ctx context.Context, app *v1alpha1.Application) ([]panel.Object, error) {
	reader := c.engine.Manager.GetAPIReader()
	objs := make([]panel.Object, 0, len(app.Status.Inventory))
	for _, ref := range app.Status.Inventory {
		o := panel.Object{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: ref.Group, Version: ref.Version, Kind: ref.Kind})
		err := reader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, u)
		switch {
		case apierrors.IsNotFound(err):
			o.Health, o.Message = v1alpha1.HealthMissing, "not found"
		case err != nil:
			return objs, fmt.Errorf("read %s %s/%s: %w", ref.Kind, ref.Namespace, ref.Name, err)
		default:
			o.Health, o.Message = delivery.ObjectHealth(u)
			if workloads[ref.Kind] {
				if o.Children, err = pods(ctx, reader, u); err != nil {
					return objs, err
				}
			}
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// pods lists the Pods a workload selects, with their health.
func pods(ctx context.Context, reader client.Reader, w *unstructured.Unstructured) ([]panel.Object, error) {
	match, found, _ := unstructured.NestedStringMap(w.Object, "spec", "selector", "matchLabels")
	if !found || len(match) == 0 {
		return nil, nil
	}
	var list corev1.PodList
	if err := reader.List(ctx, &list, client.InNamespace(w.GetNamespace()),
		client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(match)}, client.Limit(maxPods)); err != nil {
		return nil, fmt.Errorf("list pods of %s %s: %w", w.GetKind(), w.GetName(), err)
	}
	out := make([]panel.Object, 0, len(list.Items))
	for i := range list.Items {
		pod := &list.Items[i]
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pod)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: raw}
		u.SetAPIVersion("v1")
		u.SetKind("Pod")
		health, msg := delivery.ObjectHealth(u)
		out = append(out, panel.Object{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, Health: health,
			Message: cmp.Or(msg, string(pod.Status.Phase))})
	}
	return out, nil
}
