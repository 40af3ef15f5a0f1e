package delivery_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/webhook"
	"github.com/ferrycd/ferry/internal/notify/webhook/webhooktest"
	"github.com/ferrycd/ferry/internal/testenv"
)

// newNotifyEnv is newEnv with a notifier: one channel per name, each a generic webhook whose
// receiving end checks Ferry's signature, routed by subs and delivered by a real outbox worker.
func newNotifyEnv(t *testing.T, names []string, subs []notify.Subscription) (*env, map[string]*webhooktest.Sink) {
	t.Helper()
	const secret = "sink-hmac-secret"
	sinks := map[string]*webhooktest.Sink{}
	e := newEnvWith(t, testenv.GitServerOptions{}, 0, func(e *env, o *delivery.Options) {
		var channels []*notify.Channel
		for _, name := range names {
			sinks[name] = webhooktest.NewSink(t, secret)
			rcv, err := webhook.New(webhook.Config{}, notify.StaticSecret(sinks[name].URL), notify.StaticSecret(secret), nil)
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := notify.NewTemplates(notify.FormatPlain, nil)
			if err != nil {
				t.Fatal(err)
			}
			channels = append(channels, &notify.Channel{Name: name, Type: "webhook", Receiver: rcv, Templates: tmpl})
		}
		router, err := notify.NewRouter(names, subs)
		if err != nil {
			t.Fatal(err)
		}
		worker := notify.NewWorker(e.db, channels, notify.WorkerOptions{Owner: "test"})
		testenv.Run(t, worker.Run)
		o.Notifier = notify.NewHub(router, worker, e.db, channels, "https://ferry.example.com")
	})
	return e, sinks
}

// TestSyncNotifiesEachChannelOnce syncs through the real control plane with three channels,
// each a webhook that checks Ferry's signature: a global subscription to deploy.* in
// production, one in the Application's spec.notify, and one for failures only. Each gets one
// message per event, however often the Application reconciles.
func TestSyncNotifiesEachChannelOnce(t *testing.T) {
	e, sinks := newNotifyEnv(t, []string{"all", "team", "ops"}, []notify.Subscription{
		{Channels: []string{"all"}, On: []string{"deploy.*"}, Environments: []string{"production"}},
		{Channels: []string{"ops"}, On: []string{notify.EventDeployFailed}},
	})
	sha := e.commit(map[string]string{
		"app/deployment.yaml": fmt.Sprintf(deployment, 1),
		"app/config.yaml":     configMap("hello"),
	}, "Ship web v1\n\nwith a body that stays out of chat")
	e.createApp("web", func(a *v1alpha1.Application) {
		a.Spec.Environment = "production"
		a.Spec.Notify = []v1alpha1.NotifySubscription{{Channel: "team", On: []string{notify.EventDeploySucceeded}}}
	})
	app := e.waitApp("web", "Ready at "+sha, readyAt(sha))

	all := sinks["all"].Wait(t, 2, 30*time.Second)
	team := sinks["team"].Wait(t, 1, 30*time.Second)
	deployed := team[0].Event
	if deployed.Type != notify.EventDeploySucceeded || deployed.Revision != sha || deployed.CommitMessage == "" ||
		!strings.Contains(deployed.Author, "Ferry Test") || deployed.Environment != "production" ||
		deployed.ReleaseID != app.Status.History[0].ReleaseID || deployed.Changes == nil || deployed.Changes.Created != 2 {
		t.Errorf("deployed event = %+v", deployed)
	}
	if want := e.git.URL(e.repo); !strings.HasPrefix(deployed.CommitURL, strings.TrimSuffix(want, ".git")) ||
		!strings.HasSuffix(deployed.CommitURL, "/commit/"+sha) {
		t.Errorf("commit URL = %q, want %s's /commit/%s", deployed.CommitURL, want, sha)
	}
	if want := fmt.Sprintf("https://ferry.example.com/releases/%d", deployed.ReleaseID); deployed.URL != want || team[0].Link != want {
		t.Errorf("panel link = %q / %q, want %s", deployed.URL, team[0].Link, want)
	}
	if strings.Contains(team[0].Text, "stays out of chat") {
		t.Errorf("message carries the commit body: %q", team[0].Text)
	}
	if got := []string{all[0].Event.Type, all[1].Event.Type}; !slices.Equal(got, []string{notify.EventDeployStarted, notify.EventDeploySucceeded}) {
		t.Errorf("channel all got %v, want deploy.started then deploy.succeeded", got)
	}

	// The Application reconciles every second and on demand; none of that notifies again.
	for range 3 {
		if _, err := e.rec.Refresh(t.Context(), func(*v1alpha1.Application) bool { return true }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	// A failed sync goes to ops and all, not to team.
	bad := e.commit(map[string]string{
		"app/deployment.yaml": strings.Replace(fmt.Sprintf(deployment, 1), "replicas: 1", "replicas: -3", 1),
	}, "break replicas")
	e.waitApp("web", "failed at "+bad, func(a *v1alpha1.Application) bool {
		return len(a.Status.History) > 0 && a.Status.History[0].Revision == bad && a.Status.History[0].Result == "failed"
	})
	failed := sinks["ops"].Wait(t, 1, 30*time.Second)[0]
	if failed.Event.Type != notify.EventDeployFailed || !strings.Contains(failed.Event.Object, "Deployment") ||
		failed.Event.Reason == "" || failed.Severity != notify.SeverityDanger {
		t.Errorf("failed message = %+v", failed)
	}
	sinks["all"].Wait(t, 4, 30*time.Second)
	time.Sleep(2 * time.Second) // reconciles of the stalled revision go on; they must not notify

	want := map[string][]string{
		"all":  {notify.EventDeployStarted, notify.EventDeploySucceeded, notify.EventDeployStarted, notify.EventDeployFailed},
		"team": {notify.EventDeploySucceeded},
		"ops":  {notify.EventDeployFailed},
	}
	for name, sink := range sinks {
		if got := sink.Types(); !slices.Equal(got, want[name]) {
			t.Errorf("channel %s got %v, want %v", name, got, want[name])
		}
		if d := sink.Duplicates(); len(d) > 0 {
			t.Errorf("channel %s got deliveries %v more than once", name, d)
		}
	}
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.%[1]s.test.ferry.dev
spec:
  group: %[1]s.test.ferry.dev
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

// TestHealthTransitionsNotify turns an applied object Degraded and back, at rest: each
// transition is one message, however often the Application reconciles in between. The object
// is a custom resource whose status the test writes, as its controller would.
func TestHealthTransitionsNotify(t *testing.T) {
	e, sinks := newNotifyEnv(t, []string{"chat"}, []notify.Subscription{{Channels: []string{"chat"}}})
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(fmt.Sprintf(widgetCRD, e.ns)), &crd.Object); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Create(t.Context(), crd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), crd) })
	gvk := schema.GroupVersionKind{Group: e.ns + ".test.ferry.dev", Version: "v1", Kind: "Widget"}
	testenv.Eventually(t, "the Widget CRD serves", func() bool {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind("WidgetList"))
		return e.c.List(t.Context(), list, client.InNamespace(e.ns)) == nil
	})

	sha := e.commit(map[string]string{"app/widget.yaml": fmt.Sprintf("apiVersion: %s\nkind: Widget\nmetadata:\n  name: gear\nspec: {size: 1}\n", gvk.GroupVersion())}, "add a widget")
	e.createApp("web", nil)
	e.waitApp("web", "Ready at "+sha, readyAt(sha))
	sinks["chat"].Wait(t, 1, 30*time.Second)

	setStatus := func(conditions []any) {
		t.Helper()
		w := &unstructured.Unstructured{}
		w.SetGroupVersionKind(gvk)
		if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "gear"}, w); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(w.Object, map[string]any{"observedGeneration": w.GetGeneration(), "conditions": conditions}, "status"); err != nil {
			t.Fatal(err)
		}
		if err := e.c.Status().Update(t.Context(), w); err != nil {
			t.Fatal(err)
		}
	}
	setStatus([]any{map[string]any{"type": "Stalled", "status": "True", "reason": "DiskFull", "message": "disk full on node-1"}})
	e.waitApp("web", "Degraded", func(a *v1alpha1.Application) bool { return a.Status.Health.Status == v1alpha1.HealthDegraded })
	degraded := sinks["chat"].Wait(t, 2, 30*time.Second)[1]
	if degraded.Event.Type != notify.EventHealthDegraded || !strings.Contains(degraded.Event.Object, "Widget") ||
		!strings.Contains(degraded.Event.Reason, "disk full") || degraded.Event.Revision != sha {
		t.Errorf("degraded message = %+v", degraded.Event)
	}
	time.Sleep(3 * time.Second) // reconciles every second while Degraded: no more messages

	// A flap through Progressing back to Degraded is the same degradation; the recovery,
	// through Progressing as in a rollout, is one message.
	progressing := []any{map[string]any{"type": "Reconciling", "status": "True", "reason": "Repairing", "message": "repairing"}}
	isHealth := func(h v1alpha1.HealthState) func(*v1alpha1.Application) bool {
		return func(a *v1alpha1.Application) bool { return a.Status.Health.Status == h }
	}
	setStatus(progressing)
	e.waitApp("web", "Progressing", isHealth(v1alpha1.HealthProgressing))
	setStatus([]any{map[string]any{"type": "Stalled", "status": "True", "reason": "DiskFull", "message": "disk full again"}})
	e.waitApp("web", "Degraded again", isHealth(v1alpha1.HealthDegraded))
	setStatus(progressing)
	e.waitApp("web", "Progressing again", isHealth(v1alpha1.HealthProgressing))
	setStatus([]any{})
	e.waitApp("web", "Healthy again", readyAt(sha))
	sinks["chat"].Wait(t, 3, 30*time.Second)
	time.Sleep(3 * time.Second)
	want := []string{notify.EventDeploySucceeded, notify.EventHealthDegraded, notify.EventHealthRecovered}
	if got := sinks["chat"].Types(); !slices.Equal(got, want) {
		t.Errorf("chat got %v, want %v", got, want)
	}
}
