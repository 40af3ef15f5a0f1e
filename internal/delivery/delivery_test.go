package delivery_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/testenv"
)

var plane *testenv.ControlPlane

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &plane)) }

// env is one test's world: a namespace, a git server with one repository, a store, and a
// running delivery controller that watches only that namespace.
type env struct {
	t     testing.TB
	ns    string
	git   *testenv.GitServer
	repo  string
	db    *store.DB
	c     client.Client
	appNS string
	rec   *delivery.Reconciler
	// requests counts the API requests of the delivery controller.
	requests *requestCounter
	// logs holds every line the controller logged, for leak checks.
	logs lockedBuffer
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newEnv builds a test world; concurrency 0 means the Reconciler's default.
func newEnv(t testing.TB, gitOpts testenv.GitServerOptions, concurrency int) *env {
	return newEnvWith(t, gitOpts, concurrency, nil)
}

// newEnvWith is newEnv with a last word on the Reconciler's options, given the env (its
// namespace is known by then).
func newEnvWith(t testing.TB, gitOpts testenv.GitServerOptions, concurrency int, tune func(*env, *delivery.Options)) *env {
	t.Helper()
	ctx := t.Context()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	e := &env{t: t, ns: "t-" + hex.EncodeToString(suffix), repo: "deploy", requests: newRequestCounter()}
	e.appNS = e.ns

	scheme, err := delivery.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	// No client-side rate limit: the harness's admin config allows 50 requests/s, which would
	// make creating hundreds of Applications in the benchmark the bottleneck.
	unlimited := rest.CopyConfig(plane.Config)
	unlimited.QPS, unlimited.Burst = -1, 0
	e.c, err = client.New(unlimited, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	httpClient, err := rest.HTTPClientFor(plane.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(plane.Config, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	ictx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := delivery.InstallCRDs(ictx, e.c, mapper); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}})
	})

	e.git = testenv.NewGitServer(t, gitOpts)
	e.git.CreateRepo(t, e.repo)

	e.db, err = store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.db.Close() })

	level := slog.LevelInfo
	poll := 200 * time.Millisecond // tests: quick to notice health
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelError // benchmarks print their log whatever happens
		poll = 0                // benchmarks: the default, as a server runs
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testenv.LogWriter(t), &e.logs), &slog.HandlerOptions{Level: level}))
	ropts := delivery.Options{HealthTimeout: 30 * time.Second, PollInterval: poll, Concurrency: concurrency}
	if tune != nil {
		tune(e, &ropts)
	}
	counted := rest.CopyConfig(unlimited)
	counted.Wrap(e.requests.wrap)
	engine, err := delivery.NewEngine(counted, e.db, delivery.EngineOptions{
		Manager:    delivery.ManagerOptions{Namespaces: []string{e.ns}, Logger: logr.Discard()},
		Reconciler: ropts,
		GitDir:     filepath.Join(t.TempDir(), "git"),
		Logger:     log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.rec = engine.Reconciler
	testenv.Run(t, engine.Start)
	return e
}

func (e *env) commit(files map[string]string, msg string) string {
	return e.git.Commit(e.t, e.repo, "main", files, msg)
}

func (e *env) createApp(name string, mutate func(*v1alpha1.Application)) *v1alpha1.Application {
	e.t.Helper()
	app := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.appNS},
		Spec: v1alpha1.ApplicationSpec{
			Source:      v1alpha1.Source{RepoURL: e.git.URL(e.repo), Revision: "main", Path: "app"},
			Destination: v1alpha1.Destination{Namespace: e.ns},
			SyncPolicy: v1alpha1.SyncPolicy{
				Automated: true, Prune: true, SelfHeal: true,
				Interval: &metav1.Duration{Duration: time.Second},
			},
		},
	}
	if mutate != nil {
		mutate(app)
	}
	if err := e.c.Create(e.t.Context(), app); err != nil {
		e.t.Fatal(err)
	}
	return app
}

// waitApp polls the Application until ok accepts it. The deadline only ends a hung test.
func (e *env) waitApp(name, what string, ok func(*v1alpha1.Application) bool) *v1alpha1.Application {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 90*time.Second)
	defer cancel()
	app := &v1alpha1.Application{}
	for {
		err := e.c.Get(ctx, client.ObjectKey{Namespace: e.appNS, Name: name}, app)
		if err == nil && ok(app) {
			return app
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("application %s never got %s; status: %+v", name, what, app.Status)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitAuthFailed waits until the Application name says its git credentials were refused, and
// checks that this waits for a fixed Secret rather than stalling.
func (e *env) waitAuthFailed(name string) {
	e.t.Helper()
	app := e.waitApp(name, "GitAuthFailed", func(a *v1alpha1.Application) bool {
		c := apimeta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Reason == "GitAuthFailed"
	})
	if apimeta.IsStatusConditionTrue(app.Status.Conditions, v1alpha1.ConditionStalled) {
		e.t.Error("an auth failure stalls the Application; fixing the Secret must be enough")
	}
}

func ready(app *v1alpha1.Application) bool {
	return apimeta.IsStatusConditionTrue(app.Status.Conditions, v1alpha1.ConditionReady) &&
		app.Status.ObservedGeneration == app.Generation
}

func readyAt(sha string) func(*v1alpha1.Application) bool {
	return func(app *v1alpha1.Application) bool {
		return ready(app) && app.Status.Sync.Revision == sha && app.Status.Health.Status == v1alpha1.HealthHealthy
	}
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: %d
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.example/web:1
        command: ["/web"]
`

const service = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`

func configMap(greeting string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: %q\n", greeting)
}

func TestFirstSyncToHealthyAndRelease(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	sha := e.commit(map[string]string{
		"app/deployment.yaml": fmt.Sprintf(deployment, 2),
		"app/service.yaml":    service,
		"app/config.yaml":     configMap("hello"),
		"README.md":           "not a manifest, and outside path",
	}, "Ship web v1")

	start := time.Now()
	e.createApp("web", func(a *v1alpha1.Application) { a.Spec.Environment = "production" })
	app := e.waitApp("web", "Ready and Healthy at "+sha, readyAt(sha))
	t.Logf("first sync to Healthy in %v", time.Since(start))

	var dep appsv1.Deployment
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	if dep.Status.AvailableReplicas != 2 {
		t.Errorf("available replicas = %d, want 2", dep.Status.AvailableReplicas)
	}
	if got := dep.Labels["ferry.dev/name"]; got != "web" {
		t.Errorf("owner label ferry.dev/name = %q, want web", got)
	}
	if n := len(app.Status.Inventory); n != 3 {
		t.Errorf("inventory has %d objects, want 3: %+v", n, app.Status.Inventory)
	}
	if len(app.Status.History) != 1 || app.Status.History[0].Result != "succeeded" || app.Status.History[0].Revision != sha {
		t.Fatalf("history = %+v, want one succeeded entry at %s", app.Status.History, sha)
	}

	rel, err := e.db.GetRelease(t.Context(), app.Status.History[0].ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Application != "web" || rel.Environment != "production" || rel.Revision != sha ||
		rel.Result != release.ResultSucceeded || rel.CommitMessage != "Ship web v1" || !strings.Contains(rel.Author, "Ferry Test") {
		t.Errorf("release = %+v", rel)
	}
	tl, err := e.db.Timeline(t.Context(), rel.ID, release.TimelineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []release.EventType
	for _, ev := range tl.Events {
		types = append(types, ev.Type)
	}
	if len(types) != 2 || types[0] != release.EventDeployStarted || types[1] != release.EventDeploySucceeded {
		t.Errorf("timeline = %v, want deploy.started then deploy.succeeded", types)
	}
}

// TestHealthWaitWakesOnChange: with a poll interval far longer than the test, a sync still
// sees its Deployment become available and its PostSync Job complete, first and on the next
// commit, which also replaces the Job of the first: the waits read an object again when the
// owned-object watch reports a change to it, not when the poll comes round.
func TestHealthWaitWakesOnChange(t *testing.T) {
	e := newEnvWith(t, testenv.GitServerOptions{}, 0, func(_ *env, o *delivery.Options) {
		o.PollInterval = time.Hour
	})
	smoke := hookJob("smoke", "PostSync", false)
	sha := e.commit(map[string]string{"app/deployment.yaml": fmt.Sprintf(deployment, 1), "app/smoke.yaml": smoke}, "v1")
	e.createApp("web", nil)
	e.waitApp("web", "Ready and Healthy at "+sha, readyAt(sha))

	sha = e.commit(map[string]string{"app/deployment.yaml": fmt.Sprintf(deployment, 2), "app/smoke.yaml": smoke}, "v2")
	app := e.waitApp("web", "Ready and Healthy at "+sha, readyAt(sha))
	if h := app.Status.History; len(h) != 2 || h[0].Result != "succeeded" || h[1].Result != "succeeded" {
		t.Errorf("history = %+v, want two succeeded syncs", h)
	}
}

// TestWaitingSyncHoldsNoSlot runs one sync slot. An Application whose Deployment can never
// start waits for its health timeout; a second Application must sync to Healthy meanwhile,
// while the first is still waiting (it has no history yet). With a slot held for the whole
// wait, the second would start only after the first had failed.
func TestWaitingSyncHoldsNoSlot(t *testing.T) {
	e := newEnvWith(t, testenv.GitServerOptions{}, 1, func(_ *env, o *delivery.Options) {
		o.HealthTimeout = 2 * time.Minute
	})
	stuck := strings.Replace(strings.ReplaceAll(fmt.Sprintf(deployment, 1), "web", "stuck"),
		"      containers:", "      nodeSelector: {no-such-node: \"true\"}\n      containers:", 1)
	sha := e.commit(map[string]string{"stuck/deployment.yaml": stuck, "app/config.yaml": configMap("hello")}, "v1")
	e.createApp("stuck", func(a *v1alpha1.Application) { a.Spec.Source.Path = "stuck" })
	// Its Deployment is applied: the sync is now waiting for it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "stuck"}, &appsv1.Deployment{}) != nil {
		select {
		case <-ctx.Done():
			t.Fatal("the stuck Deployment was never applied")
		case <-time.After(100 * time.Millisecond):
		}
	}

	e.createApp("web", nil)
	e.waitApp("web", "Ready and Healthy at "+sha, readyAt(sha))
	var app v1alpha1.Application
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.appNS, Name: "stuck"}, &app); err != nil {
		t.Fatal(err)
	}
	if len(app.Status.History) != 0 {
		t.Errorf("the stuck sync had ended (history %+v) before the other app synced; want it still waiting", app.Status.History)
	}
}

func TestNewCommitAppliesAndPrunes(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	first := e.commit(map[string]string{
		"app/deployment.yaml": fmt.Sprintf(deployment, 1),
		"app/service.yaml":    service,
		"app/config.yaml":     configMap("hello"),
	}, "v1")
	e.createApp("web", nil)
	e.waitApp("web", "first sync", readyAt(first))

	second := e.commit(map[string]string{
		"app/service.yaml": "", // removed from git: must be pruned
		"app/config.yaml":  configMap("bonjour"),
	}, "v2: drop the service, say bonjour")
	app := e.waitApp("web", "second sync", readyAt(second))

	var cm corev1.ConfigMap
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "web-config"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["greeting"] != "bonjour" {
		t.Errorf("greeting = %q, want bonjour", cm.Data["greeting"])
	}
	err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "web"}, &corev1.Service{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("service after it left git: %v, want not found", err)
	}
	if n := len(app.Status.Inventory); n != 2 {
		t.Errorf("inventory has %d objects, want 2", n)
	}
	if len(app.Status.History) != 2 || app.Status.History[0].Revision != second || app.Status.History[1].Revision != first {
		t.Errorf("history = %+v, want second then first", app.Status.History)
	}

	// The first commit's exported tree is no longer needed; the second's is.
	removed, err := e.rec.PruneTrees(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if removed != 1 {
		t.Errorf("PruneTrees removed %d trees, want 1 (the first commit's)", removed)
	}
	third := e.commit(map[string]string{"app/config.yaml": configMap("hola")}, "v3")
	e.waitApp("web", "a sync after the prune", readyAt(third))
}

// TestSelfHealUndoesDrift changes and deletes objects by hand. The Deployment and ConfigMap
// are watched, so their drift is undone long before the hour-long poll; the Secret is never
// watched (Ferry does not list Secrets), so its deletion is undone by a manual refresh, as the
// poll would.
func TestSelfHealUndoesDrift(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	sha := e.commit(map[string]string{
		"app/deployment.yaml": fmt.Sprintf(deployment, 2),
		"app/config.yaml":     configMap("hello"),
		"app/secret.yaml":     "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-token\nstringData:\n  token: t0\n",
	}, "v1")
	e.createApp("web", func(a *v1alpha1.Application) {
		a.Spec.SyncPolicy.Interval = &metav1.Duration{Duration: time.Hour}
	})
	app := e.waitApp("web", "first sync", readyAt(sha))

	ctx := t.Context()
	var dep appsv1.Deployment
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(dep.DeepCopy())
	dep.Spec.Replicas = new(int32(5))
	if err := e.c.Patch(ctx, &dep, patch, client.FieldOwner("kubectl")); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "web-config"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "watched drift undone without a poll", func() bool {
		var d appsv1.Deployment
		var cm corev1.ConfigMap
		return e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "web"}, &d) == nil && *d.Spec.Replicas == 2 &&
			e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "web-config"}, &cm) == nil
	})

	if err := e.c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "web-token"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rec.Refresh(ctx, func(*v1alpha1.Application) bool { return true }); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "deleted secret restored by the next reconcile", func() bool {
		return e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "web-token"}, &corev1.Secret{}) == nil
	})

	// A correction is recorded once its objects are applied, so a moment after they are seen.
	testenv.Eventually(t, "the drift correction on the release's timeline", func() bool {
		tl, err := e.db.Timeline(ctx, app.Status.History[0].ReleaseID, release.TimelineFilter{Types: []release.EventType{release.EventDeployDriftCorrected}})
		if err != nil {
			t.Fatal(err)
		}
		return len(tl.Events) > 0
	})
}

func TestInvalidObjectAppliesNothing(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	sha := e.commit(map[string]string{
		"app/config.yaml":     configMap("hello"),
		"app/deployment.yaml": strings.Replace(fmt.Sprintf(deployment, 1), "replicas: 1", "replicas: -3", 1),
	}, "a commit with one invalid object")
	e.createApp("web", nil)
	app := e.waitApp("web", "Stalled", func(a *v1alpha1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, v1alpha1.ConditionStalled) && len(a.Status.History) > 0
	})

	stalled := apimeta.FindStatusCondition(app.Status.Conditions, v1alpha1.ConditionStalled)
	if stalled.Reason != "DryRunFailed" || !strings.Contains(stalled.Message, "Deployment") || !strings.Contains(stalled.Message, "web") {
		t.Errorf("Stalled = %s: %q, want DryRunFailed naming the Deployment", stalled.Reason, stalled.Message)
	}
	if app.Status.Sync.Status != v1alpha1.SyncOutOfSync {
		t.Errorf("sync = %s, want OutOfSync", app.Status.Sync.Status)
	}
	err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "web-config"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the valid ConfigMap of a rejected commit was applied (get: %v)", err)
	}
	rel, err := e.db.GetRelease(t.Context(), app.Status.History[0].ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Result != release.ResultFailed || rel.Revision != sha {
		t.Errorf("release = %+v, want failed at %s", rel, sha)
	}

	// A fix in git un-stalls it.
	fixed := e.commit(map[string]string{"app/deployment.yaml": fmt.Sprintf(deployment, 1)}, "fix replicas")
	e.waitApp("web", "Ready after the fix", readyAt(fixed))
}

// TestRetryPolicy retries a failing sync as the policy says, and then stops: one sync and
// two retries, each recorded as a failed release, then Stalled until something changes.
func TestRetryPolicy(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	sha := e.commit(map[string]string{
		"app/deployment.yaml": strings.Replace(fmt.Sprintf(deployment, 1), "replicas: 1", "replicas: -3", 1),
	}, "an invalid Deployment")
	e.createApp("web", func(a *v1alpha1.Application) {
		a.Spec.SyncPolicy.Retry = &v1alpha1.RetryPolicy{Limit: 2, Backoff: &metav1.Duration{Duration: 200 * time.Millisecond}}
	})
	app := e.waitApp("web", "three failed syncs", func(a *v1alpha1.Application) bool { return len(a.Status.History) >= 3 })
	for _, h := range app.Status.History {
		if h.Revision != sha || h.Result != "failed" {
			t.Errorf("history entry %+v, want a failed sync of %s", h, sha)
		}
	}
	// The limit is reached: several polls later there is still no fourth attempt.
	time.Sleep(3 * time.Second)
	app = e.waitApp("web", "Stalled", func(a *v1alpha1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, v1alpha1.ConditionStalled)
	})
	if n := len(app.Status.History); n != 3 {
		t.Errorf("%d syncs, want 3 (one and two retries)", n)
	}
}

func TestGitOutageWaitsAndRecovers(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	sha := e.commit(map[string]string{"app/config.yaml": configMap("hello")}, "v1")
	e.git.Stop(t)
	e.createApp("web", nil)
	e.waitApp("web", "GitFetchFailed", func(a *v1alpha1.Application) bool {
		c := apimeta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == "GitFetchFailed"
	})
	e.git.Start(t)
	e.waitApp("web", "Ready after git came back", readyAt(sha))
}

func TestManualSync(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	sha := e.commit(map[string]string{"app/config.yaml": configMap("hello")}, "v1")
	e.createApp("web", func(a *v1alpha1.Application) { a.Spec.SyncPolicy.Automated = false })
	e.waitApp("web", "OutOfSync", func(a *v1alpha1.Application) bool {
		return a.Status.Sync.Status == v1alpha1.SyncOutOfSync && a.Status.Sync.Revision == sha
	})
	err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "web-config"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("a manual app applied without a sync request (get: %v)", err)
	}

	var app v1alpha1.Application
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.appNS, Name: "web"}, &app); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(app.DeepCopy())
	metav1.SetMetaDataAnnotation(&app.ObjectMeta, v1alpha1.AnnotationSyncRequested, time.Now().Format(time.RFC3339Nano))
	if err := e.c.Patch(t.Context(), &app, patch); err != nil {
		t.Fatal(err)
	}
	e.waitApp("web", "Ready after the sync request", readyAt(sha))
}

// TestRollbackWithAutoSyncThenNewCommitUnpins rolls back while automated sync is on (Argo CD
// refuses this, #2441), checks the pin holds, then pushes a fix that ends the pin.
func TestRollbackWithAutoSyncThenNewCommitUnpins(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	v1 := e.commit(map[string]string{"app/config.yaml": configMap("v1")}, "v1")
	e.createApp("web", nil)
	e.waitApp("web", "v1", readyAt(v1))
	v2 := e.commit(map[string]string{"app/config.yaml": configMap("v2 is broken")}, "v2")
	e.waitApp("web", "v2", readyAt(v2))

	var app v1alpha1.Application
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.appNS, Name: "web"}, &app); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(app.DeepCopy())
	metav1.SetMetaDataAnnotation(&app.ObjectMeta, v1alpha1.AnnotationRollbackTo, v1)
	metav1.SetMetaDataAnnotation(&app.ObjectMeta, v1alpha1.AnnotationSyncRequested, "rollback-1")
	if err := e.c.Patch(t.Context(), &app, patch); err != nil {
		t.Fatal(err)
	}
	pinned := e.waitApp("web", "rolled back to v1", func(a *v1alpha1.Application) bool {
		return readyAt(v1)(a) && apimeta.IsStatusConditionTrue(a.Status.Conditions, v1alpha1.ConditionPinned)
	})
	if pinned.Status.Rollback == nil || pinned.Status.Rollback.TrackedHead != v2 {
		t.Errorf("rollback status = %+v, want pinned while main is at %s", pinned.Status.Rollback, v2)
	}
	greeting := func() string {
		var cm corev1.ConfigMap
		if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "web-config"}, &cm); err != nil {
			t.Fatal(err)
		}
		return cm.Data["greeting"]
	}
	if g := greeting(); g != "v1" {
		t.Errorf("after rollback greeting = %q, want v1", g)
	}
	// Several poll intervals pass: automated sync must not undo the rollback.
	time.Sleep(3 * time.Second)
	if g := greeting(); g != "v1" {
		t.Errorf("auto-sync undid the rollback: greeting = %q", g)
	}

	v3 := e.commit(map[string]string{"app/config.yaml": configMap("v3 fixed")}, "v3: the fix")
	unpinned := e.waitApp("web", "v3 deployed and unpinned", func(a *v1alpha1.Application) bool {
		return readyAt(v3)(a) && a.Status.Rollback == nil
	})
	if _, ok := unpinned.Annotations[v1alpha1.AnnotationRollbackTo]; ok {
		t.Error("the rollback annotation is still set after a new commit")
	}
	if apimeta.FindStatusCondition(unpinned.Status.Conditions, v1alpha1.ConditionPinned) != nil {
		t.Error("the Pinned condition is still set")
	}
}

// TestRefreshSyncsWithoutWaitingForThePoll uses a long interval, so only Refresh (what the push
// webhook calls) can bring the new commit in.
func TestRefreshSyncsWithoutWaitingForThePoll(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	v1 := e.commit(map[string]string{"app/config.yaml": configMap("v1")}, "v1")
	e.createApp("web", func(a *v1alpha1.Application) { a.Spec.SyncPolicy.Interval = &metav1.Duration{Duration: time.Hour} })
	e.waitApp("web", "v1", readyAt(v1))

	v2 := e.commit(map[string]string{"app/config.yaml": configMap("v2")}, "v2")
	start := time.Now()
	n, err := e.rec.Refresh(t.Context(), func(a *v1alpha1.Application) bool { return a.Spec.Source.RepoURL == e.git.URL(e.repo) })
	if err != nil || n != 1 {
		t.Fatalf("Refresh = %d, %v; want 1 application", n, err)
	}
	e.waitApp("web", "v2 after refresh", readyAt(v2))
	t.Logf("push -> applied after refresh: %v", time.Since(start))
}

// TestSecretValuesNeverLeak plants a canary in a Secret of a commit that also holds an invalid
// object, so the sync fails with the API server's words, then searches every output of the sync
// for it: the Application's status, its Events and the release timeline in the store.
func TestSecretValuesNeverLeak(t *testing.T) {
	const canary = "canary-7f3a9c-do-not-leak"
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: " + canary + "\n"
	bad := strings.Replace(fmt.Sprintf(deployment, 1), "replicas: 1", "replicas: -1", 1)
	e.commit(map[string]string{"app/secret.yaml": secret, "app/deployment.yaml": bad}, "secret and a bad deployment")
	e.createApp("web", nil)
	stalled := e.waitApp("web", "Stalled", func(a *v1alpha1.Application) bool {
		return apimeta.IsStatusConditionTrue(a.Status.Conditions, v1alpha1.ConditionStalled) && len(a.Status.History) > 0
	})
	fixed := e.commit(map[string]string{"app/deployment.yaml": fmt.Sprintf(deployment, 1)}, "fix")
	app := e.waitApp("web", "Ready after the fix", readyAt(fixed))

	var outputs []string
	for _, a := range []*v1alpha1.Application{stalled, app} {
		status, err := json.Marshal(a.Status)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(status))
	}
	var events eventsv1.EventList
	if err := e.c.List(t.Context(), &events, client.InNamespace(e.appNS)); err != nil {
		t.Fatal(err)
	}
	for _, ev := range events.Items {
		outputs = append(outputs, ev.Note)
	}
	for _, h := range app.Status.History {
		tl, err := e.db.Timeline(t.Context(), h.ReleaseID, release.TimelineFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range tl.Events {
			outputs = append(outputs, ev.Summary, fmt.Sprint(ev.Attributes))
		}
		rel, err := e.db.GetRelease(t.Context(), h.ReleaseID)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, fmt.Sprintf("%+v", rel))
	}
	if len(events.Items) == 0 || len(outputs) < 4 {
		t.Fatalf("too little output to search (%d events): the test would prove nothing", len(events.Items))
	}
	for _, out := range outputs {
		if strings.Contains(out, canary) {
			t.Errorf("the Secret's value leaked into %q", out)
		}
	}
}

// TestWrongCredentialsThenFixedSecret points an Application at a password-protected repository
// through a Secret with the wrong password, then fixes the Secret: the app waits with a clear
// reason and recovers without any change to the Application.
func TestWrongCredentialsThenFixedSecret(t *testing.T) {
	const password = "s3cret-password-canary"
	e := newEnv(t, testenv.GitServerOptions{Username: "ferry", Password: password}, 0)
	sha := e.commit(map[string]string{"app/config.yaml": configMap("hello")}, "v1")
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: e.appNS},
		StringData: map[string]string{"username": "ferry", "password": "wrong"},
	}
	if err := e.c.Create(t.Context(), creds); err != nil {
		t.Fatal(err)
	}
	e.createApp("web", func(a *v1alpha1.Application) {
		a.Spec.CredentialsRef = &v1alpha1.LocalObjectReference{Name: "repo"}
	})
	e.waitAuthFailed("web")

	patch := client.MergeFrom(creds.DeepCopy())
	creds.StringData = map[string]string{"password": password}
	if err := e.c.Patch(t.Context(), creds, patch); err != nil {
		t.Fatal(err)
	}
	app := e.waitApp("web", "Ready with the fixed Secret", readyAt(sha))
	status, _ := json.Marshal(app.Status)
	if strings.Contains(string(status), password) {
		t.Error("the repository password reached the status")
	}
}

// TestSSHWrongKeyThenFixedSecret is the SSH side of the credentials story: a client key the
// server does not accept leaves the Application waiting with GitAuthFailed, and putting the
// right key into the Secret is enough for it to sync.
func TestSSHWrongKeyThenFixedSecret(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	sha := e.commit(map[string]string{"app/config.yaml": configMap("hello over ssh")}, "v1")
	sshd := e.git.StartSSH(t)
	other := e.git.StartSSH(t) // its client key is one sshd refuses
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "repo-ssh", Namespace: e.appNS},
		Data:       map[string][]byte{"sshPrivateKey": other.ClientKey, "knownHosts": sshd.KnownHosts},
	}
	if err := e.c.Create(t.Context(), creds); err != nil {
		t.Fatal(err)
	}
	e.createApp("web", func(a *v1alpha1.Application) {
		a.Spec.Source.RepoURL = sshd.URL(e.repo)
		a.Spec.CredentialsRef = &v1alpha1.LocalObjectReference{Name: "repo-ssh"}
	})
	e.waitAuthFailed("web")

	patch := client.MergeFrom(creds.DeepCopy())
	creds.Data["sshPrivateKey"] = sshd.ClientKey
	if err := e.c.Patch(t.Context(), creds, patch); err != nil {
		t.Fatal(err)
	}
	app := e.waitApp("web", "Ready with the fixed key", readyAt(sha))
	status, _ := json.Marshal(app.Status)
	if strings.Contains(string(status), "PRIVATE KEY") {
		t.Error("the private key reached the status")
	}
}

// TestKustomizeAndHelmSources deploys the same kind of app from a kustomize overlay and from a
// Helm chart in the repository, through the controller.
func TestKustomizeAndHelmSources(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	sha := e.commit(map[string]string{
		"kustomize/base/kustomization.yaml":    "resources: [config.yaml]\n",
		"kustomize/base/config.yaml":           configMap("from the base"),
		"kustomize/overlay/kustomization.yaml": "resources: [../base]\nnamePrefix: prod-\n",
		"chart/Chart.yaml":                     "apiVersion: v2\nname: greeter\nversion: 0.1.0\n",
		"chart/values.yaml":                    "greeting: from the chart\n",
		"chart/values-prod.yaml":               "greeting: from the prod values\n",
		"chart/templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n" +
			"data:\n  greeting: {{ .Values.greeting | quote }}\n  replicas: {{ .Values.replicas | quote }}\n",
	}, "kustomize and helm")
	e.createApp("kust", func(a *v1alpha1.Application) {
		a.Spec.Source.Path, a.Spec.Source.Kustomize = "kustomize/overlay", &v1alpha1.KustomizeSource{}
	})
	e.createApp("chart", func(a *v1alpha1.Application) {
		a.Spec.Source.Path = "chart"
		a.Spec.Source.Helm = &v1alpha1.HelmSource{
			ReleaseName: "greeter",
			ValuesFiles: []string{"values-prod.yaml"},
			Values:      &apiextensionsv1.JSON{Raw: []byte(`{"replicas":"3"}`)},
		}
	})
	e.waitApp("kust", "kustomize app Ready", readyAt(sha))
	e.waitApp("chart", "helm app Ready", readyAt(sha))

	data := func(name string) map[string]string {
		var cm corev1.ConfigMap
		if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: name}, &cm); err != nil {
			t.Fatal(err)
		}
		return cm.Data
	}
	if got := data("prod-web-config")["greeting"]; got != "from the base" {
		t.Errorf("kustomize greeting = %q", got)
	}
	if d := data("greeter-config"); d["greeting"] != "from the prod values" || d["replicas"] != "3" {
		t.Errorf("helm data = %v, want the prod values file and the inline value", d)
	}
}

// hookJob is a Job hook. A failing one can never be scheduled and runs out of its deadline.
func hookJob(name, phase string, fail bool) string {
	extra := ""
	if fail {
		extra = "  activeDeadlineSeconds: 2\n"
	}
	spec := "      restartPolicy: Never\n      containers:\n      - name: run\n        image: registry.example/tools:1\n        command: [\"/run\"]\n"
	if fail {
		spec += "      nodeSelector: {no-such-node: \"true\"}\n"
	}
	return fmt.Sprintf("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: %s\n  annotations:\n    ferry.dev/hook: %s\nspec:\n  backoffLimit: 0\n%s  template:\n    spec:\n%s",
		name, phase, extra, spec)
}

func TestHooks(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	ok := e.commit(map[string]string{
		"app/config.yaml":  configMap("v1"),
		"app/migrate.yaml": hookJob("migrate", "PreSync", false),
		"app/smoke.yaml":   hookJob("smoke", "PostSync", false),
	}, "v1 with a migration and a smoke test")
	e.createApp("web", nil)
	app := e.waitApp("web", "Ready with hooks", readyAt(ok))
	for _, ref := range app.Status.Inventory {
		if ref.Kind == "Job" {
			t.Errorf("hook %s is in the inventory; hooks are run, not kept", ref.Name)
		}
	}
	var job batchv1.Job
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "smoke"}, &job); err != nil || job.Status.Succeeded != 1 {
		t.Errorf("smoke job: %v, succeeded %d", err, job.Status.Succeeded)
	}

	t.Run("a failed PreSync hook stops the sync", func(t *testing.T) {
		sha := e.commit(map[string]string{
			"app/config.yaml":  configMap("v2"),
			"app/migrate.yaml": hookJob("migrate", "PreSync", true),
		}, "v2 with a migration that fails")
		app := e.waitApp("web", "PreSyncFailed", func(a *v1alpha1.Application) bool {
			return len(a.Status.History) > 0 && a.Status.History[0].Revision == sha
		})
		if r := app.Status.History[0].Result; r != "failed" {
			t.Errorf("release result = %s, want failed", r)
		}
		c := apimeta.FindStatusCondition(app.Status.Conditions, v1alpha1.ConditionReady)
		t.Logf("Ready: %s", c.Message)
		if c == nil || c.Reason != "PreSyncFailed" || !strings.Contains(c.Message, "migrate") {
			t.Errorf("Ready = %+v, want reason PreSyncFailed naming the migrate Job", c)
		}
		var cm corev1.ConfigMap
		if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "web-config"}, &cm); err != nil || cm.Data["greeting"] != "v1" {
			t.Errorf("config after a failed PreSync = %v (%v), want v1 untouched", cm.Data, err)
		}
	})

	t.Run("a failed PostSync hook fails the release", func(t *testing.T) {
		sha := e.commit(map[string]string{
			"app/config.yaml":  configMap("v3"),
			"app/migrate.yaml": hookJob("migrate", "PreSync", false),
			"app/smoke.yaml":   hookJob("smoke", "PostSync", true),
		}, "v3 with a smoke test that fails")
		app := e.waitApp("web", "PostSync result", func(a *v1alpha1.Application) bool {
			return len(a.Status.History) > 0 && a.Status.History[0].Revision == sha
		})
		if r := app.Status.History[0].Result; r != "failed" {
			t.Errorf("release result = %s, want failed", r)
		}
		if c := apimeta.FindStatusCondition(app.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != "PostSyncFailed" {
			t.Errorf("Ready = %+v, want reason PostSyncFailed", c)
		}
		var cm corev1.ConfigMap
		if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "web-config"}, &cm); err != nil || cm.Data["greeting"] != "v3" {
			t.Errorf("config = %v (%v), want v3 applied before the smoke test", cm.Data, err)
		}
	})
}
