// Package install_test checks Ferry's install artifacts against a real control plane: the
// Kustomize base in config/ and the Helm chart in charts/ferry apply cleanly, the chart
// agrees with the base, and the least-privilege RBAC is enough for Ferry to run as its
// ServiceAccount and too little to list Secrets.
package install_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/secrets/inject"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/testenv"
)

var plane *testenv.ControlPlane

func TestMain(m *testing.M) {
	// The delivery engine logs through its own logger; silence controller-runtime's default.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(testenv.Main(m, &plane))
}

const (
	// namespace is where config/default and the chart (as installed in the docs) put Ferry.
	namespace = "ferry-system"
	// crdName is Ferry's one CustomResourceDefinition.
	crdName = "applications.ferry.dev"
	// fieldOwner applies the install objects in these tests.
	fieldOwner = "ferry-install-test"
)

// serviceAccount is who Ferry runs as, with the groups the apiserver gives a ServiceAccount token.
var serviceAccount = rest.ImpersonationConfig{
	UserName: "system:serviceaccount:" + namespace + ":ferry",
	Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
}

// root is the repository root, where config/ and charts/ live.
var root = filepath.Join("..", "..")

func TestKustomizeDefaultApplies(t *testing.T) {
	c := adminClient(t)
	objs := kustomize(t, "config/default")

	want := []string{
		"ClusterRole//ferry-controller",
		"ClusterRole//ferry-deployer",
		"ClusterRole//ferry-deployer-defaults",
		"ClusterRoleBinding//ferry-controller",
		"ClusterRoleBinding//ferry-deployer",
		"CustomResourceDefinition//" + crdName,
		"Deployment/ferry-system/ferry",
		"Namespace//ferry-system",
		"Role/ferry-system/ferry-leader-election",
		"RoleBinding/ferry-system/ferry-leader-election",
		"Service/ferry-system/ferry",
		"ServiceAccount/ferry-system/ferry",
	}
	if diff := cmp.Diff(want, ids(objs)); diff != "" {
		t.Errorf("config/default objects (-want +got):\n%s", diff)
	}
	for _, o := range objs {
		if o.GetLabels()["app.kubernetes.io/name"] != "ferry" {
			t.Errorf("%s has no label app.kubernetes.io/name=ferry", id(o))
		}
	}
	checkServerArgs(t, find(t, objs, "Deployment", "ferry"), objs)

	installBase(t, c, objs)
	dryRunApply(t, c, objs)
}

func TestKustomizeClusterAdminApplies(t *testing.T) {
	c := adminClient(t)
	objs := kustomize(t, "config/rbac/cluster-admin")
	if diff := cmp.Diff([]string{"ClusterRoleBinding//ferry-cluster-admin"}, ids(objs)); diff != "" {
		t.Fatalf("config/rbac/cluster-admin objects (-want +got):\n%s", diff)
	}
	crb := find(t, objs, "ClusterRoleBinding", "ferry-cluster-admin")
	if got, _, _ := unstructured.NestedString(crb.Object, "roleRef", "name"); got != "cluster-admin" {
		t.Errorf("roleRef.name = %q, want cluster-admin", got)
	}
	dryRunApply(t, c, objs)
}

// TestKustomizeInjectApplies checks the overlay with the secrets injection webhook: it adds
// exactly the webhook's objects to config/default, its webhook configuration is the one the
// Go code describes, and it all applies.
func TestKustomizeInjectApplies(t *testing.T) {
	c := adminClient(t)
	base := ids(kustomize(t, "config/default"))
	objs := kustomize(t, "config/inject")
	var added []string
	for _, id := range ids(objs) {
		if !slices.Contains(base, id) {
			added = append(added, id)
		}
	}
	want := []string{
		"ClusterRole//ferry-inject",
		"ClusterRoleBinding//ferry-inject",
		"MutatingWebhookConfiguration//ferry-secrets",
		"Role/ferry-system/ferry-inject",
		"RoleBinding/ferry-system/ferry-inject",
		"Service/ferry-system/ferry-webhook",
	}
	if diff := cmp.Diff(want, added); diff != "" {
		t.Errorf("config/inject adds (-want +got):\n%s", diff)
	}

	whc := find(t, objs, "MutatingWebhookConfiguration", "ferry-secrets")
	var shipped admissionregistrationv1.MutatingWebhookConfiguration
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(whc.Object, &shipped); err != nil {
		t.Fatal(err)
	}
	code := inject.WebhookConfiguration("ferry-secrets", namespace, "ferry-webhook", inject.DefaultPath)
	if diff := cmp.Diff(code.Webhooks, shipped.Webhooks); diff != "" {
		t.Errorf("config/inject/webhook.yaml differs from inject.WebhookConfiguration (-code +yaml):\n%s", diff)
	}

	deploy := find(t, objs, "Deployment", "ferry")
	env, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if !strings.Contains(fmt.Sprint(env), "FERRY_INJECT_ENABLED") || !strings.Contains(fmt.Sprint(env), "8443") {
		t.Error("the overlay does not turn inject on or expose port 8443")
	}
	// Applying the webhook for real would make every Pod creation in the shared plane wait for
	// a Ferry that is not running, so it is dry-run like the rest.
	installBase(t, c, kustomize(t, "config/default"))
	dryRunApply(t, c, objs)
}

// TestHelmChartWebhookMatchesKustomize keeps the chart's webhook configuration equal to
// config/inject's, installed as release "ferry".
func TestHelmChartWebhookMatchesKustomize(t *testing.T) {
	objs, err := renderChart(t, map[string]any{
		"vault":  map[string]any{"address": "https://vault.vault.svc:8200"},
		"inject": map[string]any{"enabled": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	chart := find(t, objs, "MutatingWebhookConfiguration", "ferry-secrets")
	kust := find(t, kustomize(t, "config/inject"), "MutatingWebhookConfiguration", "ferry-secrets")
	if diff := cmp.Diff(kust.Object["webhooks"], chart.Object["webhooks"]); diff != "" {
		t.Errorf("webhooks differ (-kustomize +helm):\n%s", diff)
	}
}

// TestRBACExamplesApply dry-runs the example Roles the docs point to.
func TestRBACExamplesApply(t *testing.T) {
	c := adminClient(t)
	data, err := os.ReadFile(filepath.Join(root, "config", "rbac", "examples", "no-exec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, "no-exec.yaml", data)
	role := find(t, objs, "ClusterRole", "ferry-app-operator-no-exec")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		resources, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources")
		for _, res := range resources {
			if res == "pods/exec" || res == "pods/attach" || res == "secrets" {
				t.Errorf("the no-exec example grants %s", res)
			}
		}
	}
	dryRunApply(t, c, objs)
}

func TestHelmChartApplies(t *testing.T) {
	c := adminClient(t)
	installBase(t, c, kustomize(t, "config/default"))

	for _, tc := range []struct {
		name   string
		values map[string]any
		// extra and absent are objects the values add to, or keep out of, the defaults.
		extra, absent []string
	}{
		{name: "defaults", absent: []string{"ClusterRoleBinding//ferry-cluster-admin", "PersistentVolumeClaim/ferry-system/ferry-data"}},
		{name: "cluster admin", values: map[string]any{"rbac": map[string]any{"clusterAdmin": true}},
			extra: []string{"ClusterRoleBinding//ferry-cluster-admin"}},
		{name: "postgres and a volume", values: map[string]any{
			"store":       map[string]any{"type": "postgres", "postgres": map[string]any{"existingSecret": "ferry-store"}},
			"persistence": map[string]any{"enabled": true},
			"panel":       map[string]any{"existingSecret": "ferry-panel"},
			"replicas":    2,
		}, extra: []string{"PersistentVolumeClaim/ferry-system/ferry-data"}},
		{name: "no RBAC", values: map[string]any{"rbac": map[string]any{"create": false}},
			absent: []string{"ClusterRole//ferry-controller", "ClusterRoleBinding//ferry-deployer", "Role/ferry-system/ferry-leader-election"}},
		{name: "secrets webhook", values: map[string]any{
			"vault":  map[string]any{"address": "https://vault.vault.svc:8200", "role": "ferry"},
			"inject": map[string]any{"enabled": true},
		}, extra: []string{"Service/ferry-system/ferry-webhook", "MutatingWebhookConfiguration//ferry-secrets",
			"Role/ferry-system/ferry-inject", "ClusterRole//ferry-inject"}},
		{name: "release chat", values: map[string]any{"notify": map[string]any{
			"panelURL": "https://ferry.example.com",
			"channels": []any{
				map[string]any{"name": "releases", "telegram": map[string]any{"chat_id": "-1001234567890",
					"token_ref": map[string]any{"name": "chat", "key": "telegram-token"}}},
				map[string]any{"name": "ops", "rocketchat": map[string]any{"url_ref": map[string]any{"name": "chat", "key": "rc"}}},
			},
			"subscriptions": []any{map[string]any{"channels": []any{"releases", "ops"}, "on": []any{"deploy.failed"}}},
		}}, extra: []string{"ConfigMap/ferry-system/ferry-config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := renderChart(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			got := ids(objs)
			for _, want := range append([]string{"CustomResourceDefinition//" + crdName, "Deployment/ferry-system/ferry",
				"Service/ferry-system/ferry", "ServiceAccount/ferry-system/ferry"}, tc.extra...) {
				if !slices.Contains(got, want) {
					t.Errorf("chart renders no %s; it renders %v", want, got)
				}
			}
			for _, unwanted := range tc.absent {
				if slices.Contains(got, unwanted) {
					t.Errorf("chart renders %s, want none", unwanted)
				}
			}
			checkServerArgs(t, find(t, objs, "Deployment", "ferry"), objs)
			dryRunApply(t, c, objs)
		})
	}
}

func TestHelmChartRefusesValuesThatCannotWork(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		// want is part of the chart's own `fail` message: Helm returns it as text only,
		// so the text is the one way to tell which guard refused.
		want string
	}{
		{"postgres without a secret", map[string]any{"store": map[string]any{"type": "postgres"}}, "existingSecret"},
		{"sqlite on two replicas", map[string]any{"replicas": 2}, "store.type=postgres"},
		{"two replicas without a session key", map[string]any{"replicas": 2,
			"store": map[string]any{"type": "postgres", "postgres": map[string]any{"existingSecret": "ferry-store"}}},
			"panel.existingSecret"},
		{"unknown store", map[string]any{"store": map[string]any{"type": "mysql"}}, "want sqlite or postgres"},
		{"webhook without Vault", map[string]any{"inject": map[string]any{"enabled": true}}, "inject.enabled needs vault.address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render error = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestHelmChartRBACMatchesKustomize keeps the two installs granting the same: the chart
// installed as release "ferry" must have the RBAC of config/default, rule for rule.
func TestHelmChartRBACMatchesKustomize(t *testing.T) {
	base := append(kustomize(t, "config/default"), kustomize(t, "config/rbac/cluster-admin")...)
	chart, err := renderChart(t, map[string]any{"rbac": map[string]any{"clusterAdmin": true}})
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, b := range base {
		if b.GroupVersionKind().Group != rbacv1.GroupName {
			continue
		}
		h := find(t, chart, b.GetKind(), b.GetName())
		for _, field := range []string{"rules", "aggregationRule", "roleRef", "subjects"} {
			if diff := cmp.Diff(b.Object[field], h.Object[field]); diff != "" {
				t.Errorf("%s %s differs (-kustomize +helm):\n%s", id(b), field, diff)
			}
		}
		compared++
	}
	if compared != 8 {
		t.Errorf("compared %d RBAC objects, want 8", compared)
	}
}

// TestHelmChartCRDsAreConfigCRDs catches a chart shipping a stale CRD: charts/ferry/crds
// must be a byte-for-byte copy of config/crd/bases.
func TestHelmChartCRDsAreConfigCRDs(t *testing.T) {
	bases := readDir(t, filepath.Join(root, "config", "crd", "bases"))
	crds := readDir(t, filepath.Join(root, "charts", "ferry", "crds"))
	if len(bases) == 0 {
		t.Fatal("config/crd/bases holds no CRD")
	}
	if diff := cmp.Diff(bases, crds); diff != "" {
		t.Errorf("charts/ferry/crds differs from config/crd/bases; copy them again (-config +chart):\n%s", diff)
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

// TestControllerRBAC asks the apiserver what Ferry's ServiceAccount may do once
// config/default's RBAC is installed.
func TestControllerRBAC(t *testing.T) {
	c := adminClient(t)
	installRBAC(t, c)

	for _, tc := range []struct {
		verb, group, resource, subresource, ns, name string
		allowed                                      bool
	}{
		// Ferry's own API.
		{"watch", "ferry.dev", "applications", "", "", "", true},
		{"patch", "ferry.dev", "applications", "status", "team-a", "web", true},
		{"update", "ferry.dev", "applications", "finalizers", "team-a", "web", true},
		{"delete", "ferry.dev", "applications", "", "team-a", "web", false},
		{"create", "events.k8s.io", "events", "", "team-a", "", true},
		{"patch", "", "events", "", "team-a", "web.1", true},
		// credentialsRef: read by name only.
		{"get", "", "secrets", "", "team-a", "git-credentials", true},
		{"list", "", "secrets", "", "team-a", "", false},
		{"list", "", "secrets", "", "", "", false},
		{"watch", "", "secrets", "", "team-a", "", false},
		{"create", "", "namespaces", "", "", "team-b", true},
		{"get", "", "namespaces", "", "", "team-b", true},
		{"delete", "", "namespaces", "", "", "team-b", false},
		// Its own CRD, and no other.
		{"patch", "apiextensions.k8s.io", "customresourcedefinitions", "", "", crdName, true},
		{"create", "apiextensions.k8s.io", "customresourcedefinitions", "", "", crdName, true},
		{"patch", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "widgets.example.com", false},
		{"delete", "apiextensions.k8s.io", "customresourcedefinitions", "", "", crdName, false},
		// The leader lease, in Ferry's namespace only.
		{"update", "coordination.k8s.io", "leases", "", namespace, "ferry-delivery.ferry.dev", true},
		{"update", "coordination.k8s.io", "leases", "", "team-a", "ferry-delivery.ferry.dev", false},
		// ferry-deployer: what applications ship.
		{"patch", "apps", "deployments", "", "team-a", "web", true},
		{"delete", "", "configmaps", "", "team-a", "web", true},
		{"patch", "", "secrets", "", "team-a", "web", true},
		{"list", "", "pods", "", "team-a", "", true},
		{"create", "", "pods", "", "team-a", "", false},
		{"list", "apps", "replicasets", "", "team-a", "", true},
		{"patch", "apps", "replicasets", "", "team-a", "web-1", false},
		{"patch", "batch", "cronjobs", "", "team-a", "nightly", true},
		{"patch", "networking.k8s.io", "ingresses", "", "team-a", "web", true},
		{"patch", "policy", "poddisruptionbudgets", "", "team-a", "web", true},
		{"patch", "autoscaling", "horizontalpodautoscalers", "", "team-a", "web", true},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "", "team-a", "", true},
		{"escalate", "rbac.authorization.k8s.io", "roles", "", "team-a", "web", false},
		{"bind", "rbac.authorization.k8s.io", "roles", "", "team-a", "web", false},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", "", "", "cluster-admin", false},
		{"create", "rbac.authorization.k8s.io", "clusterroles", "", "", "", false},
	} {
		name := tc.verb + " " + tc.resource
		if tc.subresource != "" {
			name += "/" + tc.subresource
		}
		if tc.group != "" {
			name += "." + tc.group
		}
		if tc.ns != "" {
			name += " in " + tc.ns
		}
		if tc.name != "" {
			name += " named " + tc.name
		}
		t.Run(name, func(t *testing.T) {
			attrs := authorizationv1.ResourceAttributes{Verb: tc.verb, Group: tc.group, Resource: tc.resource,
				Subresource: tc.subresource, Namespace: tc.ns, Name: tc.name}
			if got := allowed(t, c, attrs); got != tc.allowed {
				t.Errorf("allowed = %v, want %v", got, tc.allowed)
			}
		})
	}

	t.Run("cluster-admin overlay", func(t *testing.T) {
		objs := kustomize(t, "config/rbac/cluster-admin")
		apply(t, c, objs)
		t.Cleanup(func() { deleteAll(c, objs) })
		attrs := authorizationv1.ResourceAttributes{Verb: "create", Group: rbacv1.GroupName, Resource: "clusterroles"}
		if !allowed(t, c, attrs) {
			t.Error("with config/rbac/cluster-admin, Ferry still may not create ClusterRoles")
		}
	})
}

// TestFerryRunsAsItsServiceAccount runs Ferry's delivery engine as the ServiceAccount of
// config/default, against a cluster where its CRD does not exist yet: it must install the
// CRD, win the leader lease, read a private repository's credentials, create the
// destination namespace, apply an application of the usual kinds, see it healthy, record
// events, and prune.
func TestFerryRunsAsItsServiceAccount(t *testing.T) {
	ctx := t.Context()
	admin := adminClient(t)
	installRBAC(t, admin)

	// A fresh cluster: no CRD until Ferry applies its own.
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: crdName}}
	if err := admin.Delete(ctx, crd); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	testenv.Eventually(t, "CRD "+crdName+" deleted", func() bool {
		return apierrors.IsNotFound(admin.Get(ctx, client.ObjectKeyFromObject(crd), crd))
	})

	sa := rest.CopyConfig(plane.Config)
	sa.Impersonate = serviceAccount
	scheme, err := delivery.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	saClient, err := client.New(sa, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ictx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := delivery.InstallCRDs(ictx, saClient, saClient.RESTMapper()); err != nil {
		t.Fatalf("install CRDs as %s: %v", serviceAccount.UserName, err)
	}

	suffix := randomHex(t)
	appNS, destNS := "apps-"+suffix, "shop-"+suffix
	for _, ns := range []string{appNS, destNS} {
		t.Cleanup(func() {
			_ = admin.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		})
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}}); err != nil {
		t.Fatal(err)
	}

	password := randomHex(t)
	git := testenv.NewGitServer(t, testenv.GitServerOptions{Username: "ferry", Password: password})
	git.CreateRepo(t, "shop")
	first := git.Commit(t, "shop", "main", appFiles, "Ship the shop")
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "git-credentials", Namespace: appNS},
		StringData: map[string]string{"username": "ferry", "password": password},
	}
	if err := admin.Create(ctx, creds); err != nil {
		t.Fatal(err)
	}
	app := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: appNS},
		Spec: v1alpha1.ApplicationSpec{
			Source:         v1alpha1.Source{RepoURL: git.URL("shop"), Revision: "main", Path: "app"},
			CredentialsRef: &v1alpha1.LocalObjectReference{Name: creds.Name},
			Destination:    v1alpha1.Destination{Namespace: destNS, CreateNamespace: true},
			SyncPolicy: v1alpha1.SyncPolicy{Automated: true, Prune: true, SelfHeal: true,
				Interval: &metav1.Duration{Duration: time.Second}},
		},
	}
	if err := admin.Create(ctx, app); err != nil {
		t.Fatal(err)
	}

	runDelivery(t, sa)
	waitReady(t, admin, app, first)

	lease := &coordinationv1.Lease{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "ferry-delivery.ferry.dev"}, lease); err != nil {
		t.Fatalf("leader lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Error("leader lease has no holder")
	}
	testenv.Eventually(t, "a Synced event on the Application", func() bool {
		var events eventsv1.EventList
		if err := admin.List(ctx, &events, client.InNamespace(appNS)); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(events.Items, func(e eventsv1.Event) bool {
			return e.Regarding.Name == app.Name && e.Reason == "Synced"
		})
	})

	// Pruning needs delete.
	second := git.CommitChanges(t, "shop", "main", []testenv.GitChange{
		{Path: "app/networkpolicy.yaml", Delete: true},
	}, "Drop the policy")
	waitReady(t, admin, app, second)
	rb := &rbacv1.RoleBinding{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: destNS, Name: "web"}, rb); err != nil {
		t.Errorf("RoleBinding: %v", err)
	}
	testenv.Eventually(t, "NetworkPolicy pruned", func() bool {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("networking.k8s.io/v1")
		u.SetKind("NetworkPolicy")
		return apierrors.IsNotFound(admin.Get(ctx, client.ObjectKey{Namespace: destNS, Name: "web"}, u))
	})
}

// appFiles is an application of the kinds ferry-deployer grants, in a private repository.
//
// It has no Secret: the health wait of internal/delivery (kstatus' caching cluster reader)
// lists every kind it waits for, and ferry-deployer grants no list on Secrets, so a synced
// Secret stays Unknown until the health timeout. See docs/install.md, "Known limits".
var appFiles = map[string]string{
	"app/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: registry.example/web:1
        envFrom:
        - configMapRef: {name: web}
`,
	"app/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`,
	"app/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  GREETING: hello
`,
	"app/rbac.yaml": `apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: web
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
`,
	// A Secret and a RoleBinding to the Role above, in the same commit: health is read object by
	// object (Ferry may not list secrets), and Roles apply in a stage before their bindings.
	"app/secret.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: web
stringData:
  greeting: not really secret
`,
	"app/rolebinding.yaml": roleBinding,
	"app/pdb.yaml": `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: web}
`,
	"app/networkpolicy.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - ports:
    - port: 80
`,
}

// roleBinding binds the Role of appFiles. Without the bind verb, the apiserver refuses (even
// on dry-run) a RoleBinding to a Role that does not exist yet, so Ferry applies Roles first.
const roleBinding = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: web
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: web
subjects:
- kind: ServiceAccount
  name: web
`

// runDelivery runs the controller manager and reconciler as `ferry server` wires them,
// with leader election in Ferry's namespace, until the test ends.
func runDelivery(t *testing.T, cfg *rest.Config) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testenv.LogWriter(t), &slog.HandlerOptions{Level: slog.LevelInfo}))
	db, err := store.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "ferry.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	engine, err := delivery.NewEngine(cfg, db, delivery.EngineOptions{
		Manager: delivery.ManagerOptions{
			LeaderElection:          true,
			LeaderElectionNamespace: namespace,
			Logger:                  logr.FromSlogHandler(log.Handler()),
		},
		Reconciler: delivery.Options{HealthTimeout: 30 * time.Second, PollInterval: 200 * time.Millisecond},
		GitDir:     filepath.Join(t.TempDir(), "git"),
		Logger:     log,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, engine.Start)
}

// waitReady waits until app is Ready and Healthy at revision.
func waitReady(t *testing.T, c client.Client, app *v1alpha1.Application, revision string) {
	t.Helper()
	got := &v1alpha1.Application{}
	ok := func() bool {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(app), got); err != nil {
			return false
		}
		return apimeta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionReady) &&
			got.Status.ObservedGeneration == got.Generation && got.Status.Sync.Revision == revision &&
			got.Status.Health.Status == v1alpha1.HealthHealthy
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("application %s never Ready and Healthy at %s; status: %+v; events:\n%s",
				app.Name, revision, got.Status, eventNotes(c, app.Namespace))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// eventNotes lists the events in ns, which say why a sync failed.
func eventNotes(c client.Client, ns string) string {
	var events eventsv1.EventList
	if err := c.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range events.Items {
		fmt.Fprintf(&b, "%s %s: %s\n", e.Type, e.Reason, e.Note)
	}
	return b.String()
}

// checkServerArgs parses the container's arguments with the flags `ferry server` defines
// and validates the configuration they make, so a misspelt flag fails here, not in a Pod.
// checkServerArgs loads the configuration the Deployment gives ferry server: its args, and the
// configuration file among objs that FERRY_CONFIG names, if any.
func checkServerArgs(t *testing.T, deploy *unstructured.Unstructured, objs []*unstructured.Unstructured) {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("%s has %d containers, want 1", id(deploy), len(containers))
	}
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	if len(args) == 0 || args[0] != "server" {
		t.Fatalf("%s args = %q, want `server ...`", id(deploy), args)
	}
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config.BindFlags(fs, config.Default())
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatalf("%s args %q: %v", id(deploy), args, err)
	}
	env := map[string]string{}
	list, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "env")
	for _, e := range list {
		e := e.(map[string]any)
		if v, ok := e["value"].(string); ok {
			env[e["name"].(string)] = v
		}
	}
	path := ""
	if env["FERRY_CONFIG"] != "" {
		cm := find(t, objs, "ConfigMap", deploy.GetName()+"-config")
		data, _, _ := unstructured.NestedString(cm.Object, "data", "config.yaml")
		path = filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(path, fs, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok && k != "FERRY_CONFIG" && k != "FERRY_STORE_FILE"
	})
	if err != nil {
		t.Fatalf("%s args %q, env %v: %v", id(deploy), args, env, err)
	}
	if path != "" && (len(cfg.Notify.Channels) == 0 || cfg.Notify.PanelURL == "" || cfg.Inject.Namespace != deploy.GetNamespace()) {
		t.Errorf("%s: notify config %+v, namespace %q; want the chart's channels, panel URL and the release namespace",
			id(deploy), cfg.Notify, cfg.Inject.Namespace)
	}
	if !cfg.Delivery.LeaderElection || cfg.Delivery.LeaderElectionNamespace != deploy.GetNamespace() {
		t.Errorf("%s: leader election %v in %q, want on in the Deployment's namespace %q", id(deploy),
			cfg.Delivery.LeaderElection, cfg.Delivery.LeaderElectionNamespace, deploy.GetNamespace())
	}
	if cfg.DataDir != "/var/lib/ferry" || cfg.Log.Format != "json" {
		t.Errorf("%s: data dir %q, log format %q; want /var/lib/ferry and json", id(deploy), cfg.DataDir, cfg.Log.Format)
	}
}

// kustomize builds the kustomization in dir, relative to the repository root, as
// `kubectl apply -k` does.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	// Decoded as JSON values (numbers as float64), which unstructured objects require.
	return decode(t, dir, out)
}

// renderChart renders charts/ferry as `helm template ferry charts/ferry -n ferry-system
// --include-crds` does, with values over the chart's own, for the plane's Kubernetes version.
func renderChart(t *testing.T, values map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	chrt, err := loader.LoadDir(filepath.Join(root, "charts", "ferry"))
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(plane.Config)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !chartutil.IsCompatibleRange(chrt.Metadata.KubeVersion, sv.GitVersion) {
		t.Fatalf("chart kubeVersion %q excludes the test cluster's %s", chrt.Metadata.KubeVersion, sv.GitVersion)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: sv.GitVersion, Major: sv.Major, Minor: sv.Minor}
	top, err := chartutil.ToRenderValues(chrt, values,
		chartutil.ReleaseOptions{Name: "ferry", Namespace: namespace, Revision: 1, IsInstall: true}, caps)
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := engine.Engine{Strict: true}.Render(chrt, top)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for _, crd := range chrt.CRDObjects() {
		objs = append(objs, decode(t, crd.Filename, crd.File.Data)...)
	}
	names := make([]string, 0, len(manifests))
	for name := range manifests {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(filepath.Base(name), "_") {
			continue
		}
		objs = append(objs, decode(t, name, []byte(manifests[name]))...)
	}
	return objs, nil
}

// decode splits a multi-document YAML file into objects, skipping empty documents.
func decode(t *testing.T, name string, data []byte) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
}

func adminClient(t *testing.T) client.Client {
	t.Helper()
	scheme, err := delivery.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(plane.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// installBase applies what namespaced objects need to exist for real: the Namespace and
// the CRD, which it waits to be served.
func installBase(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	var base []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition" {
			base = append(base, o)
		}
	}
	if len(base) != 2 {
		t.Fatalf("want a Namespace and a CRD to install, got %v", ids(base))
	}
	apply(t, c, base)
	testenv.Eventually(t, "CRD "+crdName+" Established", func() bool {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(t.Context(), client.ObjectKey{Name: crdName}, crd); err != nil {
			return false
		}
		return slices.ContainsFunc(crd.Status.Conditions, func(c apiextensionsv1.CustomResourceDefinitionCondition) bool {
			return c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue
		})
	})
}

// installRBAC applies config/default for real except the Deployment and Service, and waits
// until the kube-controller-manager has aggregated ferry-deployer.
func installRBAC(t *testing.T, c client.Client) {
	t.Helper()
	objs := kustomize(t, "config/default")
	installBase(t, c, objs)
	var rbac []*unstructured.Unstructured
	for _, o := range objs {
		if o.GroupVersionKind().Group == rbacv1.GroupName || o.GetKind() == "ServiceAccount" {
			rbac = append(rbac, o)
		}
	}
	apply(t, c, rbac)
	testenv.Eventually(t, "ferry-deployer aggregated", func() bool {
		return allowed(t, c, authorizationv1.ResourceAttributes{Verb: "create", Group: "apps", Resource: "deployments", Namespace: "default"})
	})
}

func apply(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if err := c.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s: %v", id(o), err)
		}
	}
}

// dryRunApply server-side applies every object with dry-run, so the apiserver validates
// each one fully (schema, defaulting, admission) without keeping it.
func dryRunApply(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if err := c.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll); err != nil {
			t.Errorf("dry-run apply %s: %v", id(o), err)
		}
	}
}

func deleteAll(c client.Client, objs []*unstructured.Unstructured) {
	for _, o := range objs {
		_ = c.Delete(context.Background(), o.DeepCopy())
	}
}

// allowed asks the apiserver whether Ferry's ServiceAccount may do attrs.
func allowed(t *testing.T, c client.Client, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: serviceAccount.UserName, Groups: serviceAccount.Groups, ResourceAttributes: &attrs,
	}}
	if err := c.Create(t.Context(), sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among %v", kind, name, ids(objs))
	return nil
}

// id names an object as Kind/namespace/name.
func id(o *unstructured.Unstructured) string {
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = id(o)
	}
	sort.Strings(out)
	return out
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
