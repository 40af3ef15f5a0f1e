package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/secrets/vault"
	"github.com/ferrycd/ferry/internal/secrets/vaultapps"
	"github.com/ferrycd/ferry/internal/testenv"
)

// vaultWorld is a real Vault whose Kubernetes auth trusts the real test API server, with a
// role "shop" that the default service account of ns may use to read secret/shop/*, and a
// role "nobody" that reads nothing.
func vaultWorld(t *testing.T) *testenv.Vault {
	t.Helper()
	v := testenv.NewVault(t, testenv.VaultOptions{})
	if err := v.PutPolicy(t.Context(), "shop", `path "secret/data/shop/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := v.PutPolicy(t.Context(), "nothing", `path "secret/data/none" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	return v
}

func putSecret(t *testing.T, v *testenv.Vault, path string, data map[string]any) {
	t.Helper()
	if _, err := v.Client().KVv2("secret").Put(t.Context(), path, data); err != nil {
		t.Fatal(err)
	}
}

// TestVaultSecretsResolvedAndRotated is the delivery side of Vault: a Secret manifest marked
// for resolution gets its value from Vault, read with the identity of the Application's
// namespace; a new version in Vault rolls exactly the workload that references it and
// re-applies the Secret; a role that may not read the path applies nothing; and the value
// shows up nowhere but in the Secret.
func TestVaultSecretsResolvedAndRotated(t *testing.T) {
	const canary1, canary2 = "canary-v1-5d1e0c-do-not-leak", "canary-v2-9b27aa-do-not-leak"
	v := vaultWorld(t)
	putSecret(t, v, "shop/db", map[string]any{"password": canary1})
	kube, err := kubernetes.NewForConfig(plane.Config)
	if err != nil {
		t.Fatal(err)
	}

	e := newEnvWith(t, testenv.GitServerOptions{}, 0, func(e *env, o *delivery.Options) {
		err := v.EnableKubernetesAuth(t.Context(), plane.Config, testenv.KubernetesAuthOptions{
			Mount: "kubernetes",
			Roles: []testenv.KubernetesRole{
				{Name: "shop", ServiceAccounts: []string{"default"}, Namespaces: []string{e.ns}, Policies: []string{"shop"}},
				{Name: "nobody", ServiceAccounts: []string{"default"}, Namespaces: []string{e.ns}, Policies: []string{"nothing"}},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		apps := vaultapps.New(vault.Config{Address: v.Addr, Auth: vault.Auth{Method: vault.MethodKubernetes, Role: "shop"}}, kube)
		t.Cleanup(func() { _ = apps.Close() })
		o.Secrets = apps
		o.SecretCheckInterval = 300 * time.Millisecond
	})
	// The namespace's default service account is made by the controller-manager.
	testenv.Eventually(t, "the default service account", func() bool {
		return e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "default"}, &corev1.ServiceAccount{}) == nil
	})

	withEnv := strings.Replace(fmt.Sprintf(deployment, 1), "        command: [\"/web\"]\n",
		"        command: [\"/web\"]\n        env:\n        - name: DB_PASSWORD\n          value: vault:secret/shop/db#password\n", 1)
	other := strings.ReplaceAll(fmt.Sprintf(deployment, 1), "web", "other")
	resolved := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  annotations:\n    ferry.dev/secrets: resolve\n" +
		"stringData:\n  password: vault:secret/shop/db#password\n  url: postgres://shop:${vault:secret/shop/db#password}@db/shop\n"
	sha := e.commit(map[string]string{"app/web.yaml": withEnv, "app/other.yaml": other, "app/secret.yaml": resolved}, "v1")
	e.createApp("shop", func(a *v1alpha1.Application) { a.Spec.SyncPolicy.Interval = &metav1.Duration{Duration: time.Hour} })
	app := e.waitApp("shop", "Ready", readyAt(sha))

	ctx := t.Context()
	secretValue := func() string {
		var s corev1.Secret
		if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "db"}, &s); err != nil {
			t.Fatal(err)
		}
		if got, want := string(s.Data["url"]), "postgres://shop:"+string(s.Data["password"])+"@db/shop"; got != want {
			t.Errorf("url = %q, want the inline reference resolved too", got)
		}
		return string(s.Data["password"])
	}
	if got := secretValue(); got != canary1 {
		t.Fatalf("Secret password = %q, want the value from Vault", got)
	}
	template := func(name string) (string, int64) {
		var d appsv1.Deployment
		if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Annotations[v1alpha1.AnnotationSecretVersions], d.Generation
	}
	webVersions, _ := template("web")
	otherVersions, otherGen := template("other")
	if webVersions == "" || otherVersions != "" {
		t.Fatalf("secret-versions annotations: web %q, other %q; want web only", webVersions, otherVersions)
	}
	var dep appsv1.Deployment
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "web"}, &dep); err != nil {
		t.Fatal(err)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Env[0].Value; got != "vault:secret/shop/db#password" {
		t.Errorf("the Deployment's env holds %q, want the reference left for ferry exec", got)
	}

	// Rotation: a new version in Vault.
	putSecret(t, v, "shop/db", map[string]any{"password": canary2})
	testenv.Eventually(t, "the Secret re-applied and web rolled", func() bool {
		ann, _ := template("web")
		return ann != webVersions && secretValue() == canary2
	})
	if ann, gen := template("other"); ann != "" || gen != otherGen {
		t.Errorf("other was touched by a rotation that is not its business (generation %d → %d)", otherGen, gen)
	}
	// The rotation is recorded once its objects are applied, so a moment after they are seen.
	var rotated []release.Event
	testenv.Eventually(t, "a secret.rotated event on the release's timeline", func() bool {
		tl, err := e.db.Timeline(ctx, app.Status.History[0].ReleaseID, release.TimelineFilter{Types: []release.EventType{release.EventSecretRotated}})
		if err != nil {
			t.Fatal(err)
		}
		rotated = tl.Events
		return len(rotated) > 0
	})
	if !strings.Contains(rotated[0].Summary, "Deployment") {
		t.Errorf("timeline secret.rotated events = %+v, want one naming the rolled Deployment", rotated)
	}

	// A role that may not read the path: nothing is applied, and the condition says why.
	deniedSecret := strings.Replace(resolved, "name: db", "name: denied-db", 1)
	e.commit(map[string]string{"denied/secret.yaml": deniedSecret, "denied/cm.yaml": strings.Replace(configMap("x"), "web-config", "denied-config", 1)}, "denied app")
	e.createApp("denied", func(a *v1alpha1.Application) {
		a.Annotations = map[string]string{vaultapps.AnnotationRole: "nobody"}
		a.Spec.Source.Path = "denied"
	})
	denied := e.waitApp("denied", "SecretNotResolved", func(a *v1alpha1.Application) bool {
		c := apimeta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Reason == "SecretNotResolved"
	})
	c := apimeta.FindStatusCondition(denied.Status.Conditions, v1alpha1.ConditionReady)
	if !strings.Contains(c.Message, "secret/shop/db") || !strings.Contains(c.Message, "permission denied") {
		t.Errorf("condition %q, want the reference and the denial", c.Message)
	}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "denied-db"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("denied-db exists after a denied read (get: %v): nothing may be applied half-resolved", err)
	}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "denied-config"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("denied-config exists after a denied read (get: %v): nothing may be applied", err)
	}

	// The canary: everywhere but the Secret itself.
	var outputs []string
	for _, name := range []string{"shop", "denied"} {
		var a v1alpha1.Application
		if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.appNS, Name: name}, &a); err != nil {
			t.Fatal(err)
		}
		status, _ := json.Marshal(a.Status)
		outputs = append(outputs, string(status))
		for _, h := range a.Status.History {
			tl, err := e.db.Timeline(ctx, h.ReleaseID, release.TimelineFilter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range tl.Events {
				outputs = append(outputs, ev.Summary, fmt.Sprint(ev.Attributes))
			}
			rel, err := e.db.GetRelease(ctx, h.ReleaseID)
			if err != nil {
				t.Fatal(err)
			}
			outputs = append(outputs, fmt.Sprintf("%+v", rel))
		}
	}
	var events eventsv1.EventList
	if err := e.c.List(ctx, &events, client.InNamespace(e.appNS)); err != nil {
		t.Fatal(err)
	}
	for _, ev := range events.Items {
		outputs = append(outputs, ev.Note)
	}
	var shop v1alpha1.Application
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.appNS, Name: "shop"}, &shop); err != nil {
		t.Fatal(err)
	}
	diffText, _, err := e.rec.Diff(context.WithoutCancel(ctx), &shop)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, diffText, e.logs.String())
	if len(events.Items) == 0 || e.logs.String() == "" {
		t.Fatal("too little output to search: the test would prove nothing")
	}
	for _, out := range outputs {
		for _, canary := range []string{canary1, canary2} {
			if strings.Contains(out, canary) {
				t.Errorf("a Vault value leaked into %.300q", out)
			}
		}
	}
}
