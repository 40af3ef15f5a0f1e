package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/testenv"
)

var plane *testenv.ControlPlane

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &plane)) }

// installCRDs installs the Application CRD once for all tests of the package.
var installCRDs = sync.OnceValue(func() error {
	c, err := newClient()
	if err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(plane.Config)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(plane.Config, httpClient)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return delivery.InstallCRDs(ctx, c, mapper)
})

func newClient() (client.Client, error) {
	scheme, err := delivery.Scheme()
	if err != nil {
		return nil, err
	}
	return client.New(plane.Config, client.Options{Scheme: scheme})
}

// fixture is one test's namespace on the shared control plane. No controller runs: tests
// write Application status themselves.
type fixture struct {
	t  *testing.T
	c  client.Client
	ns string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if err := installCRDs(); err != nil {
		t.Fatal(err)
	}
	c, err := newClient()
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	f := &fixture{t: t, c: c, ns: "cli-" + hex.EncodeToString(suffix)}
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})
	})
	return f
}

// app runs `ferry app ARGS...` against the fixture's namespace; a later -n in args wins.
func (f *fixture) app(args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"app", "--kubeconfig", plane.Kubeconfig, "-n", f.ns}, args...)
	code = Main(f.t.Context(), full, &out, &errOut)
	f.t.Logf("ferry %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

// create makes Application name with status st; mutate, when set, changes it before.
func (f *fixture) create(name string, st v1alpha1.ApplicationStatus, mutate func(*v1alpha1.Application)) *v1alpha1.Application {
	f.t.Helper()
	app := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: v1alpha1.ApplicationSpec{
			Source:      v1alpha1.Source{RepoURL: "https://git.example.com/deploy.git", Revision: "main", Path: "app"},
			Destination: v1alpha1.Destination{Namespace: "prod"},
		},
	}
	if mutate != nil {
		mutate(app)
	}
	ctx := f.t.Context()
	if err := f.c.Create(ctx, app); err != nil {
		f.t.Fatal(err)
	}
	app.Status = st
	// The CRD requires both states once status exists; the controller starts them at Unknown.
	if app.Status.Sync.Status == "" {
		app.Status.Sync.Status = v1alpha1.SyncUnknown
	}
	if app.Status.Health.Status == "" {
		app.Status.Health.Status = v1alpha1.HealthUnknown
	}
	if err := f.c.Status().Update(ctx, app); err != nil {
		f.t.Fatal(err)
	}
	return app
}

func (f *fixture) get(name string) *v1alpha1.Application {
	f.t.Helper()
	app := &v1alpha1.Application{}
	if err := f.c.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: name}, app); err != nil {
		f.t.Fatal(err)
	}
	return app
}

// controller plays the delivery controller for Application name: once a sync request
// other than the current one appears, it applies steps to the status one second apart.
// The returned channel yields the outcome once the steps are done or ctx ends.
func (f *fixture) controller(ctx context.Context, name string, steps ...step) <-chan error {
	done := make(chan error, 1)
	before := f.get(name).Annotations[v1alpha1.AnnotationSyncRequested]
	go func() {
		done <- func() error {
			var req string
			for req == "" || req == before {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
				app := &v1alpha1.Application{}
				if err := f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, app); err != nil {
					return err
				}
				req = app.Annotations[v1alpha1.AnnotationSyncRequested]
			}
			for _, apply := range steps {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Second):
				}
				app := &v1alpha1.Application{}
				if err := f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, app); err != nil {
					return err
				}
				patch := client.MergeFrom(app.DeepCopy())
				apply(&app.Status, req)
				if err := f.c.Status().Patch(ctx, app, patch); err != nil {
					return err
				}
			}
			return nil
		}()
	}()
	return done
}

func cond(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}
}

func sha(c string) string { return strings.Repeat(c, 40) }

// fields splits output into lines of whitespace-separated cells, dropping empty lines.
func fields(out string) [][]string {
	var rows [][]string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

// normalized returns out's lines with runs of spaces squeezed to one.
func normalized(out string) map[string]bool {
	lines := map[string]bool{}
	for line := range strings.Lines(out) {
		lines[strings.Join(strings.Fields(line), " ")] = true
	}
	return lines
}

func TestAppList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.create("web", v1alpha1.ApplicationStatus{
		Sync:       v1alpha1.SyncStatus{Status: v1alpha1.SyncSynced, Revision: sha("a")},
		Health:     v1alpha1.HealthStatus{Status: v1alpha1.HealthHealthy},
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, "Synced", "revision aaaaaaa applied")},
	}, nil)
	f.create("api", v1alpha1.ApplicationStatus{
		Sync:       v1alpha1.SyncStatus{Status: v1alpha1.SyncOutOfSync, Revision: sha("b")},
		Health:     v1alpha1.HealthStatus{Status: v1alpha1.HealthDegraded, Message: "Deployment prod/api: 0/1 available"},
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionFalse, "SyncFailed", "boom")},
	}, nil)
	other := newFixture(t)
	other.create("db", v1alpha1.ApplicationStatus{}, nil)
	empty := newFixture(t)

	t.Run("table", func(t *testing.T) {
		out, _, code := f.app("list")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		rows := fields(out)
		var got [][]string
		for _, r := range rows {
			got = append(got, r[:min(len(r), 6)]) // AGE varies
		}
		want := [][]string{
			{"NAME", "SYNC", "HEALTH", "REVISION", "READY", "AGE"},
			{"api", "OutOfSync", "Degraded", "bbbbbbb", "False", "(SyncFailed)"},
			{"web", "Synced", "Healthy", "aaaaaaa", "True", "(Synced)"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})

	t.Run("all namespaces", func(t *testing.T) {
		out, _, code := f.app("list", "-A")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		rows := fields(out)
		if diff := cmp.Diff([]string{"NAMESPACE", "NAME", "SYNC", "HEALTH", "REVISION", "READY", "AGE"}, rows[0]); diff != "" {
			t.Errorf("header (-want +got):\n%s", diff)
		}
		// Other tests' Applications may sit between ours; keep only ours, in printed order.
		ours := map[string]bool{f.ns: true, other.ns: true}
		var got []string
		for _, r := range rows[1:] {
			if ours[r[0]] {
				got = append(got, r[0]+"/"+r[1])
			}
		}
		want := []string{f.ns + "/api", f.ns + "/web", other.ns + "/db"}
		if f.ns > other.ns {
			want = []string{other.ns + "/db", f.ns + "/api", f.ns + "/web"}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("applications (-want +got):\n%s", diff)
		}
	})

	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			out, _, code := f.app("list", "-o", format)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			var list v1alpha1.ApplicationList
			if err := yaml.Unmarshal([]byte(out), &list); err != nil { // YAML is a superset of JSON
				t.Fatal(err)
			}
			if format == "json" && !json.Valid([]byte(out)) {
				t.Error("output is not JSON")
			}
			type item struct{ Kind, Name, Revision string }
			got := []item{{Kind: list.Kind}}
			for _, a := range list.Items {
				got = append(got, item{a.Kind, a.Name, a.Status.Sync.Revision})
			}
			want := []item{{Kind: "ApplicationList"}, {"Application", "api", sha("b")}, {"Application", "web", sha("a")}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("list (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("empty namespace", func(t *testing.T) {
		out, errOut, code := f.app("list", "-n", empty.ns)
		if code != 0 || out != "" {
			t.Fatalf("exit %d, stdout %q; want 0 and nothing", code, out)
		}
		if want := "No applications in namespace " + empty.ns + ".\n"; errOut != want {
			t.Errorf("stderr = %q, want %q", errOut, want)
		}
	})

	t.Run("unknown output", func(t *testing.T) {
		if _, _, code := f.app("list", "-o", "xml"); code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
	})
}

func TestAppGet(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	lastSync := metav1.NewTime(time.Date(2024, 5, 6, 9, 8, 9, 0, time.FixedZone("CEST", 2*60*60)))
	app := f.create("web", v1alpha1.ApplicationStatus{
		Sync:   v1alpha1.SyncStatus{Status: v1alpha1.SyncSynced, Revision: sha("a")},
		Health: v1alpha1.HealthStatus{Status: v1alpha1.HealthDegraded, Message: "Deployment prod/web: 0/2 available"},
		Conditions: []metav1.Condition{
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, "HealthFailed", "deployment not available"),
			cond(v1alpha1.ConditionStalled, metav1.ConditionTrue, "HealthFailed", "deployment not available"),
		},
		Inventory: []v1alpha1.ObjectRef{
			{Version: "v1", Kind: "Namespace", Name: "prod"},
			{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "prod", Name: "web"},
		},
		LastSyncedAt: &lastSync,
	}, func(a *v1alpha1.Application) {
		a.Spec.Source.Kustomize = &v1alpha1.KustomizeSource{}
		a.Spec.Environment = "production"
		a.Spec.Destination.CreateNamespace = true
		a.Spec.SyncPolicy = v1alpha1.SyncPolicy{Automated: true, Prune: true}
	})

	out, _, code := f.app("get", "web")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := normalized(out)
	for _, want := range []string{
		"Name: " + f.ns + "/web",
		"Repository: https://git.example.com/deploy.git",
		"Revision: main",
		"Path: app",
		"Kind: kustomize",
		"Destination: namespace prod (created when missing)",
		"Environment: production",
		"Sync policy: automated, prune; every 3m0s",
		"Suspended: false",
		"Sync: Synced at " + sha("a"),
		"Health: Degraded: Deployment prod/web: 0/2 available",
		"Ready: False (HealthFailed): deployment not available",
		"TYPE STATUS REASON MESSAGE",
		"Ready False HealthFailed deployment not available",
		"Stalled True HealthFailed deployment not available",
		"KIND NAMESPACE NAME",
		"Namespace - prod",
		"Deployment prod web",
	} {
		if !lines[want] {
			t.Errorf("no line %q", want)
		}
	}
	if !strings.Contains(out, "2024-05-06T07:08:09Z (") {
		t.Errorf("last sync time is not in UTC RFC 3339")
	}

	out, _, code = f.app("get", "web", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got v1alpha1.Application
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(app.Spec, got.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if got.Kind != "Application" || got.APIVersion != "ferry.dev/v1alpha1" || len(got.ManagedFields) != 0 {
		t.Errorf("kind %q, apiVersion %q, %d managed fields; want Application, ferry.dev/v1alpha1, none",
			got.Kind, got.APIVersion, len(got.ManagedFields))
	}
}

func TestAppHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	at := func(h int) metav1.Time {
		return metav1.NewTime(time.Date(2024, 5, 6, h, 0, 0, 0, time.FixedZone("EST", -5*60*60)))
	}
	// Stored out of order: the command sorts, it does not trust the order.
	f.create("web", v1alpha1.ApplicationStatus{History: []v1alpha1.HistoryEntry{
		{ID: 2, Revision: sha("b"), Generation: 1, DeployedAt: at(2), Result: "succeeded", ReleaseID: 12},
		{ID: 3, Revision: sha("c"), Generation: 1, DeployedAt: at(3), Result: "failed", ReleaseID: 13},
		{ID: 1, Revision: sha("a"), Generation: 1, DeployedAt: at(1), Result: "succeeded"},
	}}, nil)

	out, _, code := f.app("history", "web")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := [][]string{
		{"ID", "REVISION", "DEPLOYED", "RESULT", "RELEASE"},
		{"3", "ccccccc", "2024-05-06T08:00:00Z", "failed", "13"},
		{"2", "bbbbbbb", "2024-05-06T07:00:00Z", "succeeded", "12"},
		{"1", "aaaaaaa", "2024-05-06T06:00:00Z", "succeeded", "-"},
	}
	if diff := cmp.Diff(want, fields(out)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}

	out, _, code = f.app("history", "web", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var entries []v1alpha1.HistoryEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, h := range entries {
		ids = append(ids, h.ID)
	}
	if diff := cmp.Diff([]int64{3, 2, 1}, ids); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}

// step is one status write of the simulated controller; req is the sync request it answers.
type step func(st *v1alpha1.ApplicationStatus, req string)

// Steps of the simulated controller.
var (
	progressing step = func(st *v1alpha1.ApplicationStatus, _ string) {
		apimeta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionReady, metav1.ConditionUnknown, "Progressing", "syncing revision aaaaaaa"))
	}
	synced step = func(st *v1alpha1.ApplicationStatus, req string) {
		st.LastHandledSyncRequest = req
		st.Sync = v1alpha1.SyncStatus{Status: v1alpha1.SyncSynced, Revision: sha("a")}
		apimeta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionReady, metav1.ConditionTrue, "Synced", "revision aaaaaaa applied"))
	}
	syncFailed step = func(st *v1alpha1.ApplicationStatus, req string) {
		st.LastHandledSyncRequest = req
		apimeta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionReady, metav1.ConditionFalse, "SyncFailed", "apply Deployment prod/web: boom"))
	}
	stalled step = func(st *v1alpha1.ApplicationStatus, req string) {
		syncFailed(st, req)
		apimeta.SetStatusCondition(&st.Conditions, cond(v1alpha1.ConditionStalled, metav1.ConditionTrue, "RenderFailed", "kustomization.yaml: bad"))
	}
)

func TestAppSync(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ready := v1alpha1.ApplicationStatus{
		LastHandledSyncRequest: "2020-01-01T00:00:00Z",
		Conditions:             []metav1.Condition{cond(v1alpha1.ConditionReady, metav1.ConditionTrue, "Synced", "old")},
	}
	tests := []struct {
		name      string
		args      []string
		suspended bool
		steps     []step
		wantCode  int
		wantOut   []string // substrings of stdout
		wantErr   []string // substrings of stderr
		wantReq   bool     // the sync-requested annotation is set
	}{
		{name: "request", wantReq: true, wantOut: []string{"sync requested"}},
		{
			name: "wait ready", args: []string{"--wait"}, steps: []step{progressing, synced},
			wantReq: true, wantOut: []string{"Ready=Unknown Progressing: syncing revision aaaaaaa", "is ready at revision aaaaaaa: revision aaaaaaa applied"},
		},
		{
			name: "wait sync failed", args: []string{"--wait"}, steps: []step{syncFailed},
			wantReq: true, wantCode: 1, wantErr: []string{"is not ready: SyncFailed: apply Deployment prod/web: boom"},
		},
		{
			name: "wait stalled", args: []string{"--wait"}, steps: []step{stalled},
			wantReq: true, wantCode: 1, wantErr: []string{"is stalled: RenderFailed: kustomization.yaml: bad"},
		},
		{
			name: "wait timeout", args: []string{"--wait", "--timeout", "1s"},
			wantReq: true, wantCode: 1, wantErr: []string{"no sync result after 1s; last seen Ready=True Synced: old"},
		},
		{name: "suspended", suspended: true, wantCode: 1, wantErr: []string{"is suspended"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fixture{t: t, c: f.c, ns: f.ns}
			name := "app-" + string(rune('a'+i))
			f.create(name, ready, func(a *v1alpha1.Application) { a.Spec.Suspend = tt.suspended })
			var sim <-chan error
			if tt.steps != nil {
				sim = f.controller(t.Context(), name, tt.steps...)
			}
			before := time.Now()
			out, errOut, code := f.app(append([]string{"sync", name}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			for _, s := range tt.wantOut {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q", s)
				}
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q", s)
				}
			}
			if sim != nil {
				if err := <-sim; err != nil {
					t.Errorf("simulated controller: %v", err)
				}
			}
			req, ok := f.get(name).Annotations[v1alpha1.AnnotationSyncRequested]
			if ok != tt.wantReq {
				t.Fatalf("sync-requested annotation set: %t, want %t", ok, tt.wantReq)
			}
			if !ok {
				return
			}
			at, err := time.Parse(time.RFC3339Nano, req)
			if err != nil {
				t.Fatalf("sync-requested %q: %v", req, err)
			}
			if at.Before(before) || at.After(time.Now()) {
				t.Errorf("sync-requested %s is not the time of the command", req)
			}
		})
	}
}

func TestAppSuspendResume(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.create("web", v1alpha1.ApplicationStatus{}, func(a *v1alpha1.Application) {
		a.Annotations = map[string]string{v1alpha1.AnnotationRollbackTo: sha("a"), "team": "payments"}
	})

	out, _, code := f.app("suspend", "web")
	if code != 0 {
		t.Fatalf("suspend: exit %d", code)
	}
	if want := "application " + f.ns + "/web suspended\n"; out != want {
		t.Errorf("suspend printed %q, want %q", out, want)
	}
	if app := f.get("web"); !app.Spec.Suspend {
		t.Error("spec.suspend is false after suspend")
	}

	out, _, code = f.app("resume", "web")
	if code != 0 {
		t.Fatalf("resume: exit %d", code)
	}
	if want := "application " + f.ns + "/web resumed; rollback pin to aaaaaaa removed\n"; out != want {
		t.Errorf("resume printed %q, want %q", out, want)
	}
	app := f.get("web")
	if app.Spec.Suspend {
		t.Error("spec.suspend is true after resume")
	}
	if diff := cmp.Diff(map[string]string{"team": "payments"}, app.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}

func TestAppRollback(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	day := func(d int) metav1.Time { return metav1.NewTime(time.Date(2024, 5, d, 12, 0, 0, 0, time.UTC)) }
	// Current revision e; newest first: 6 e ok, 5 d failed, 4 e ok, 3 c ok, 2 b ok, 1 a failed.
	history := []v1alpha1.HistoryEntry{
		{ID: 6, Revision: sha("e"), DeployedAt: day(6), Result: "succeeded"},
		{ID: 5, Revision: sha("d"), DeployedAt: day(5), Result: "failed"},
		{ID: 4, Revision: sha("e"), DeployedAt: day(4), Result: "succeeded"},
		{ID: 3, Revision: sha("c"), DeployedAt: day(3), Result: "succeeded"},
		{ID: 2, Revision: sha("b"), DeployedAt: day(2), Result: "succeeded"},
		{ID: 1, Revision: sha("a"), DeployedAt: day(1), Result: "failed"},
	}
	noCandidate := []v1alpha1.HistoryEntry{
		{ID: 2, Revision: sha("e"), DeployedAt: day(2), Result: "succeeded"},
		{ID: 1, Revision: sha("d"), DeployedAt: day(1), Result: "failed"},
	}
	tests := []struct {
		name      string
		history   []v1alpha1.HistoryEntry
		suspended bool
		args      []string
		steps     []step
		wantPin   string // "" means no pin and no sync request
		wantCode  int
		wantErr   string
	}{
		{name: "newest other succeeded", history: history, wantPin: sha("c")},
		{name: "explicit id", history: history, args: []string{"2"}, wantPin: sha("b")},
		{name: "explicit failed id", history: history, args: []string{"5"}, wantCode: 1, wantErr: "history entry 5 (revision ddddddd) is failed"},
		{name: "explicit unknown id", history: history, args: []string{"9"}, wantCode: 1, wantErr: "no history entry 9"},
		{name: "id not a number", history: history, args: []string{"latest"}, wantCode: 1, wantErr: `history ID "latest"`},
		{name: "no candidate", history: noCandidate, wantCode: 1, wantErr: "nothing to roll back to: no successful sync of a revision other than the current eeeeeee"},
		{name: "empty history", wantCode: 1, wantErr: "nothing to roll back to"},
		{name: "suspended", history: history, suspended: true, wantCode: 1, wantErr: "is suspended"},
		{name: "wait", history: history, args: []string{"--wait"}, steps: []step{synced}, wantPin: sha("c")},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fixture{t: t, c: f.c, ns: f.ns}
			name := "app-" + string(rune('a'+i))
			f.create(name, v1alpha1.ApplicationStatus{
				Sync:    v1alpha1.SyncStatus{Status: v1alpha1.SyncSynced, Revision: sha("e")},
				History: tt.history,
			}, func(a *v1alpha1.Application) {
				a.Spec.Suspend = tt.suspended
				a.Spec.SyncPolicy.Automated = true
			})
			var sim <-chan error
			if tt.steps != nil {
				sim = f.controller(t.Context(), name, tt.steps...)
			}
			out, errOut, code := f.app(append([]string{"rollback", name}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr lacks %q", tt.wantErr)
			}
			if sim != nil {
				if err := <-sim; err != nil {
					t.Errorf("simulated controller: %v", err)
				}
			}
			ann := f.get(name).Annotations
			if got := ann[v1alpha1.AnnotationRollbackTo]; got != tt.wantPin {
				t.Errorf("rollback-to = %q, want %q", got, tt.wantPin)
			}
			if _, ok := ann[v1alpha1.AnnotationSyncRequested]; ok != (tt.wantPin != "") {
				t.Errorf("sync-requested set: %t, want %t", ok, tt.wantPin != "")
			}
			if tt.wantPin != "" && !strings.Contains(out, "pinned to "+tt.wantPin) {
				t.Errorf("stdout does not name the pinned commit %s", tt.wantPin)
			}
		})
	}
}

func TestAppNotFound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, verb := range []string{"get", "history", "sync", "suspend", "resume", "rollback"} {
		t.Run(verb, func(t *testing.T) {
			out, errOut, code := f.app(verb, "nope")
			if code != 1 || out != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
			}
			if want := "ferry: application " + f.ns + "/nope not found\n"; errOut != want {
				t.Errorf("stderr = %q, want %q", errOut, want)
			}
		})
	}
}

// TestAppKubeconfig checks that $KUBECONFIG and the context's namespace are honoured, and
// that --context picks a context.
func TestAppKubeconfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.create("web", v1alpha1.ApplicationStatus{}, nil)
	cfg, err := clientcmd.LoadFromFile(plane.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Contexts[cfg.CurrentContext].Namespace = f.ns
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		e := &env{stdout: &out, stderr: &out, lookupEnv: func(k string) (string, bool) {
			if k == "KUBECONFIG" {
				return path, true
			}
			return "", false
		}}
		root := newRoot(e)
		root.SetArgs(args)
		err := root.ExecuteContext(t.Context())
		return out.String(), err
	}

	out, err := run("app", "list")
	if err != nil {
		t.Fatal(err)
	}
	if rows := fields(out); len(rows) != 2 || rows[1][0] != "web" {
		t.Errorf("list in the context's namespace printed:\n%s", out)
	}
	if _, err := run("app", "get", "web"); err != nil {
		t.Errorf("get in the context's namespace: %v", err)
	}
	if _, err := run("app", "list", "--context", "nope"); err == nil {
		t.Error("an unknown --context is not an error")
	}
	if _, err := run("app", "get", "web", "-n", "default"); !errors.Is(err, errNotFound) {
		t.Errorf("get in namespace default: %v, want %v", err, errNotFound)
	}
}

func TestSyncResult(t *testing.T) {
	const req = "2024-05-06T07:08:09.123Z"
	ready := func(status metav1.ConditionStatus) metav1.Condition {
		return cond(v1alpha1.ConditionReady, status, "R", "m")
	}
	tests := []struct {
		name     string
		handled  string
		conds    []metav1.Condition
		wantDone bool
		wantErr  error
	}{
		{name: "not handled yet", handled: "older", conds: []metav1.Condition{ready(metav1.ConditionTrue)}},
		{name: "still reconciling", handled: req, conds: []metav1.Condition{
			ready(metav1.ConditionTrue), cond(v1alpha1.ConditionReconciling, metav1.ConditionTrue, "Progressing", "m"),
		}},
		{name: "ready unknown", handled: req, conds: []metav1.Condition{ready(metav1.ConditionUnknown)}},
		{name: "no ready", handled: req},
		{name: "ready", handled: req, conds: []metav1.Condition{ready(metav1.ConditionTrue)}, wantDone: true},
		{name: "not ready", handled: req, conds: []metav1.Condition{ready(metav1.ConditionFalse)}, wantDone: true, wantErr: errNotReady},
		{name: "stalled", handled: req, conds: []metav1.Condition{
			ready(metav1.ConditionFalse), cond(v1alpha1.ConditionStalled, metav1.ConditionTrue, "S", "m"),
		}, wantDone: true, wantErr: errStalled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &v1alpha1.Application{Status: v1alpha1.ApplicationStatus{LastHandledSyncRequest: tt.handled, Conditions: tt.conds}}
			done, err := syncResult(app, req)
			if done != tt.wantDone || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("syncResult = %t, %v; want %t, %v", done, err, tt.wantDone, tt.wantErr)
			}
		})
	}
}

func TestAppDiff(t *testing.T) {
	const canary = "canary-diff-4c1e"
	f := newFixture(t)
	git := testenv.NewGitServer(t, testenv.GitServerOptions{})
	git.CreateRepo(t, "deploy")
	git.Commit(t, "deploy", "main", map[string]string{
		"app/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: hello\n",
		"app/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\nstringData:\n  password: " + canary + "\n",
	}, "config and secret")
	live := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "web-config", Namespace: f.ns},
		Data:       map[string]string{"greeting": "changed by hand"},
	}
	if err := f.c.Create(t.Context(), live); err != nil {
		t.Fatal(err)
	}
	f.create("web", v1alpha1.ApplicationStatus{}, func(a *v1alpha1.Application) {
		a.Spec.Source.RepoURL = git.URL("deploy")
		a.Spec.Destination.Namespace = f.ns
	})

	out, errOut, code := f.app("diff", "web")
	if code != 1 || !strings.Contains(errOut, "a sync would change") {
		t.Fatalf("diff exit %d, stderr %q; want 1 saying a sync would change things", code, errOut)
	}
	for _, want := range []string{
		"--- live/ConfigMap/" + f.ns + "/web-config", "-  greeting: changed by hand", "+  greeting: hello",
		"+++ git/Secret/" + f.ns + "/web-secret",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
	if strings.Contains(out, canary) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(canary))) {
		t.Error("the diff shows the Secret's value")
	}
	if err := f.c.Get(t.Context(), client.ObjectKeyFromObject(live), live); err != nil || live.Data["greeting"] != "changed by hand" {
		t.Errorf("diff changed the cluster: %v %v", live.Data, err)
	}
}
