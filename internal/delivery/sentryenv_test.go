package delivery

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferrycd/ferry/api/v1alpha1"
)

// injected is the env Ferry appends, in YAML, for release shop@abc1234 in production.
const injected = `{name: SENTRY_RELEASE, value: shop@abc1234}, {name: SENTRY_ENVIRONMENT, value: production}`

// podTemplate is a pod spec with an init container and a container without env, indented
// for the depth of the kind, and the same after injection.
func podTemplate(indent int) (in, want string) {
	pad := strings.Repeat(" ", indent)
	spec := func(initEnv, env string) string {
		return pad + "initContainers:\n" +
			pad + "- {name: migrate, image: tools:1, env: [" + initEnv + "]}\n" +
			pad + "containers:\n" +
			pad + "- {name: app, image: app:1" + env + "}\n"
	}
	return spec("{name: MODE, value: migrate}", ""),
		spec("{name: MODE, value: migrate}, "+injected, ", env: ["+injected+"]")
}

func TestInjectSentryEnv(t *testing.T) {
	template := func(apiVersion, kind string) (in, want string) {
		head := fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata: {name: w}\nspec:\n  template:\n    spec:\n", apiVersion, kind)
		in, want = podTemplate(6)
		return head + in, head + want
	}
	cronIn, cronWant := podTemplate(10)
	cronHead := "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: w}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n"
	podIn, podWant := podTemplate(2)
	podHead := "apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec:\n"

	type tc struct{ name, in, want string }
	var cases []tc
	for _, w := range []struct{ apiVersion, kind string }{
		{"apps/v1", "Deployment"}, {"apps/v1", "StatefulSet"}, {"apps/v1", "DaemonSet"},
		{"apps/v1", "ReplicaSet"},
	} {
		in, want := template(w.apiVersion, w.kind)
		cases = append(cases, tc{w.kind, in, want})
	}
	cases = append(cases,
		tc{"CronJob", cronHead + cronIn, cronHead + cronWant},
		tc{"a hook Pod", strings.Replace(podHead, "{name: w}", "{name: w, annotations: {ferry.dev/hook: PostSync}}", 1) + podIn,
			strings.Replace(podHead, "{name: w}", "{name: w, annotations: {ferry.dev/hook: PostSync}}", 1) + podWant},
	)
	jobIn, jobWant := template("batch/v1", "Job")
	hook := func(doc string) string {
		return strings.Replace(doc, "{name: w}", "{name: w, annotations: {ferry.dev/hook: PreSync}}", 1)
	}
	cases = append(cases, tc{"a hook Job", hook(jobIn), hook(jobWant)},
		// Their pod spec cannot change once created: a new release would fail the next sync.
		tc{"a Job kept in sync", jobIn, jobIn}, tc{"a bare Pod", podHead + podIn, podHead + podIn})

	unchanged := func(name, doc string) tc { return tc{name, doc, doc} }
	deploymentWith := func(containers string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  template:\n    spec:\n      containers: " + containers + "\n"
	}
	cases = append(cases,
		tc{"a variable the container sets itself keeps its value",
			deploymentWith("[{name: app, env: [{name: SENTRY_ENVIRONMENT, value: staging-eu}]}]"),
			deploymentWith("[{name: app, env: [{name: SENTRY_ENVIRONMENT, value: staging-eu}, {name: SENTRY_RELEASE, value: shop@abc1234}]}]")},
		unchanged("both set by the container, one from a ConfigMap",
			deploymentWith("[{name: app, env: [{name: SENTRY_RELEASE, valueFrom: {configMapKeyRef: {name: c, key: r}}}, {name: SENTRY_ENVIRONMENT, value: x}]}]")),
		unchanged("opted out on the object", strings.Replace(deploymentWith("[{name: app}]"),
			"{name: w}", "{name: w, annotations: {ferry.dev/sentry-env: disabled}}", 1)),
		unchanged("not a workload", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w}\ndata: {containers: x}\n"),
		unchanged("a custom kind named Deployment", strings.Replace(deploymentWith("[{name: app}]"), "apps/v1", "example.com/v1", 1)),
		unchanged("an old API version", strings.Replace(deploymentWith("[{name: app}]"), "apps/v1", "extensions/v1beta1", 1)),
		unchanged("no pod template", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec: {replicas: 1}\n"),
		unchanged("template is not a map", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec: {template: oops}\n"),
		unchanged("containers is not a list", deploymentWith("oops")),
		unchanged("a container is not a map", deploymentWith("[oops]")),
		unchanged("env is not a list", deploymentWith("[{name: app, env: {A: b}}]")),
		unchanged("an env entry is not a map", deploymentWith("[{name: app, env: [A=b]}]")),
		unchanged("the second container is odd: the first is left alone too",
			deploymentWith("[{name: app}, {name: sidecar, env: oops}]")),
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := parseObject(t, c.in)
			injectSentryEnv([]*unstructured.Unstructured{o}, "shop@abc1234", "production")
			if diff := cmp.Diff(parseObject(t, c.want).Object, o.Object); diff != "" {
				t.Errorf("object after injection (-want +got):\n%s", diff)
			}
		})
	}
}

// shopObjects renders what an Application of a Deployment, a CronJob and a ConfigMap would,
// with a Deployment label that differs between commits that change the app.
func shopObjects(t *testing.T, label string) []*unstructured.Unstructured {
	t.Helper()
	return []*unstructured.Unstructured{
		parseObject(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop, labels: {tier: "+label+"}}\n"+
			"spec:\n  template:\n    spec:\n      containers: [{name: web, image: web:1}]\n"),
		parseObject(t, "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: report, namespace: shop}\n"+
			"spec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: report, image: report:1}]\n"),
		parseObject(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: shop}\ndata: {greeting: hello}\n"),
	}
}

// envOf returns the env of the only container of the pod spec at fields of o, by name.
func envOf(t *testing.T, o *unstructured.Unstructured, fields ...string) map[string]string {
	t.Helper()
	containers, _, err := unstructured.NestedSlice(o.Object, append(fields, "containers")...)
	if err != nil || len(containers) != 1 {
		t.Fatalf("containers = %v, %v", containers, err)
	}
	out := map[string]string{}
	env, _ := containers[0].(map[string]any)["env"].([]any)
	for _, e := range env {
		m := e.(map[string]any)
		out[m["name"].(string)], _ = m["value"].(string)
	}
	return out
}

func TestSentryEnvKeepsTheReleaseOfUnchangedObjects(t *testing.T) {
	const (
		first  = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		second = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	)
	digest, err := renderedDigest(shopObjects(t, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	changed, err := renderedDigest(shopObjects(t, "v2"))
	if err != nil {
		t.Fatal(err)
	}
	if digest == changed {
		t.Fatal("the digest does not see a changed label")
	}

	for _, c := range []struct {
		name        string
		last        *v1alpha1.WorkloadEnvStatus
		label       string
		optOut      bool
		wantRelease string // "" means no variable set
		want        v1alpha1.WorkloadEnvStatus
	}{
		{name: "first sync", label: "v1",
			wantRelease: "shop@2222222", want: v1alpha1.WorkloadEnvStatus{Revision: second, Digest: digest}},
		{name: "same objects keep the last revision", label: "v1",
			last:        &v1alpha1.WorkloadEnvStatus{Revision: first, Digest: digest},
			wantRelease: "shop@1111111", want: v1alpha1.WorkloadEnvStatus{Revision: first, Digest: digest}},
		{name: "changed objects take the new revision", label: "v2",
			last:        &v1alpha1.WorkloadEnvStatus{Revision: first, Digest: digest},
			wantRelease: "shop@2222222", want: v1alpha1.WorkloadEnvStatus{Revision: second, Digest: changed}},
		{name: "opted out on the Application: nothing set, the state still kept", label: "v1", optOut: true,
			last: &v1alpha1.WorkloadEnvStatus{Revision: first, Digest: digest},
			want: v1alpha1.WorkloadEnvStatus{Revision: first, Digest: digest}},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := &v1alpha1.Application{
				ObjectMeta: metav1.ObjectMeta{Name: "shop"},
				Spec:       v1alpha1.ApplicationSpec{Destination: v1alpha1.Destination{Namespace: "shop"}},
				Status:     v1alpha1.ApplicationStatus{WorkloadEnv: c.last},
			}
			if c.optOut {
				app.Annotations = map[string]string{v1alpha1.AnnotationSentryEnv: "disabled"}
			}
			objs := shopObjects(t, c.label)
			got, err := sentryEnv(app, second, objs)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			if r := envOf(t, objs[0], "spec", "template", "spec")["SENTRY_RELEASE"]; r != c.wantRelease {
				t.Errorf("Deployment: SENTRY_RELEASE = %q, want %q", r, c.wantRelease)
			}
			wantEnv := map[string]string{"SENTRY_RELEASE": c.wantRelease, "SENTRY_ENVIRONMENT": "shop"} // the destination namespace
			if c.optOut {
				wantEnv = map[string]string{}
			}
			cronEnv := envOf(t, objs[1], "spec", "jobTemplate", "spec", "template", "spec")
			if diff := cmp.Diff(wantEnv, cronEnv); diff != "" {
				t.Errorf("CronJob env (-want +got):\n%s", diff)
			}
			// The digest is of the objects before injection: the next sync, which renders
			// them afresh, must find the same one.
			if after, err := renderedDigest(objs); err != nil || (after == got.Digest) != c.optOut {
				t.Errorf("digest of the injected objects = %s, %v; recorded %s: must differ exactly when variables were set",
					after, err, got.Digest)
			}
		})
	}
}

func TestRenderedDigestIgnoresOrder(t *testing.T) {
	objs := shopObjects(t, "v1")
	// Two objects that share group, kind, namespace and name are told apart by content.
	objs = append(objs, parseObject(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: shop}\ndata: {greeting: hi}\n"))
	want, err := renderedDigest(objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 64 {
		t.Errorf("digest %q is not a hex SHA-256", want)
	}
	reversed := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		reversed[len(objs)-1-i] = o
	}
	for name, order := range map[string][]*unstructured.Unstructured{
		"reversed": reversed,
		"rotated":  append(append([]*unstructured.Unstructured{}, objs[2:]...), objs[:2]...),
	} {
		if got, err := renderedDigest(order); err != nil || got != want {
			t.Errorf("%s: digest = %s, %v; want %s", name, got, err, want)
		}
	}
	if got, _ := renderedDigest(objs[:3]); got == want {
		t.Error("dropping an object does not change the digest")
	}
}
