package delivery_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/testenv"
)

// shopDeployment has a container that names its Sentry environment itself; tier is a label
// that a commit changing the app changes.
const shopDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels: {tier: %s}
spec:
  replicas: 1
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
      - name: web
        image: registry.example/shop:1
      - name: worker
        image: registry.example/shop-worker:1
        env:
        - {name: SENTRY_ENVIRONMENT, value: production-eu}
`

const shopCronJob = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: shop-report
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: report
            image: registry.example/shop:1
`

// TestSentryEnvNamesTheReleaseWithoutNeedlessRollouts deploys an app of a monorepo, then
// commits to another app of the same repository, then to this one: only the last changes the
// pod template, and with it SENTRY_RELEASE.
func TestSentryEnvNamesTheReleaseWithoutNeedlessRollouts(t *testing.T) {
	e := newEnv(t, testenv.GitServerOptions{}, 0)
	first := e.commit(map[string]string{
		"apps/shop/deployment.yaml": fmt.Sprintf(shopDeployment, "v1"),
		"apps/shop/cronjob.yaml":    shopCronJob,
	}, "shop v1")
	e.createApp("shop", func(a *v1alpha1.Application) {
		a.Spec.Source.Path = "apps/shop"
		a.Spec.Environment = "production"
	})
	app := e.waitApp("shop", "Ready at "+first, readyAt(first))
	if app.Status.WorkloadEnv == nil || app.Status.WorkloadEnv.Revision != first || len(app.Status.WorkloadEnv.Digest) != 64 {
		t.Fatalf("status.workloadEnv = %+v, want revision %s and a SHA-256", app.Status.WorkloadEnv, first)
	}
	digest := app.Status.WorkloadEnv.Digest

	deployment := func() (appsv1.Deployment, map[string]map[string]string) {
		t.Helper()
		var dep appsv1.Deployment
		if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "shop"}, &dep); err != nil {
			t.Fatal(err)
		}
		return dep, envByContainer(dep.Spec.Template.Spec.Containers)
	}
	release1 := "shop@" + first[:7]
	dep, got := deployment()
	want := map[string]map[string]string{
		"web":    {"SENTRY_RELEASE": release1, "SENTRY_ENVIRONMENT": "production"},
		"worker": {"SENTRY_RELEASE": release1, "SENTRY_ENVIRONMENT": "production-eu"}, // its own value wins
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deployment env after the first sync (-want +got):\n%s", diff)
	}
	var cron batchv1.CronJob
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "shop-report"}, &cron); err != nil {
		t.Fatal(err)
	}
	wantCron := map[string]map[string]string{"report": {"SENTRY_RELEASE": release1, "SENTRY_ENVIRONMENT": "production"}}
	if diff := cmp.Diff(wantCron, envByContainer(cron.Spec.JobTemplate.Spec.Template.Spec.Containers)); diff != "" {
		t.Errorf("CronJob env (-want +got):\n%s", diff)
	}

	// A commit to another app of the monorepo syncs this one and changes nothing in it.
	generation := dep.Generation
	other := e.commit(map[string]string{"apps/other/x.yaml": configMap("not shop's")}, "other app")
	app = e.waitApp("shop", "Ready at "+other, readyAt(other))
	if diff := cmp.Diff(&v1alpha1.WorkloadEnvStatus{Revision: first, Digest: digest}, app.Status.WorkloadEnv); diff != "" {
		t.Errorf("status.workloadEnv after a commit elsewhere (-want +got):\n%s", diff)
	}
	dep, got = deployment()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deployment env after a commit elsewhere (-want +got):\n%s", diff)
	}
	if dep.Generation != generation {
		t.Errorf("a commit elsewhere changed the Deployment: generation %d, was %d", dep.Generation, generation)
	}

	// A commit that changes the app names the new release.
	third := e.commit(map[string]string{"apps/shop/deployment.yaml": fmt.Sprintf(shopDeployment, "v2")}, "shop: relabel")
	app = e.waitApp("shop", "Ready at "+third, readyAt(third))
	if app.Status.WorkloadEnv == nil || app.Status.WorkloadEnv.Revision != third || app.Status.WorkloadEnv.Digest == digest {
		t.Errorf("status.workloadEnv = %+v, want revision %s and a new digest", app.Status.WorkloadEnv, third)
	}
	_, got = deployment()
	release3 := "shop@" + third[:7]
	want = map[string]map[string]string{
		"web":    {"SENTRY_RELEASE": release3, "SENTRY_ENVIRONMENT": "production"},
		"worker": {"SENTRY_RELEASE": release3, "SENTRY_ENVIRONMENT": "production-eu"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deployment env after a commit to the app (-want +got):\n%s", diff)
	}
}

// envByContainer maps each container's name to its literal env values.
func envByContainer(containers []corev1.Container) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, c := range containers {
		out[c.Name] = map[string]string{}
		for _, e := range c.Env {
			out[c.Name][e.Name] = e.Value
		}
	}
	return out
}
