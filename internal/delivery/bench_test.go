package delivery_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/testenv"
)

// BenchmarkDelivery measures what ANCHORS.md compares with Flux: one git repository with N
// apps (each a 1-replica Deployment, a Service and a ConfigMap in its own directory), N
// Applications created at once, and the time until every one is Ready and Healthy on the local
// control plane. FERRY_BENCH_APPS overrides the sizes (comma-separated). It also reports the
// API requests the controller sent per app, and logs them by kind. With
// FERRY_BENCH_APISERVER_PROFILE=FILE, it writes a 20 s CPU profile of kube-apiserver taken
// from the run's 8th second (go tool pprof -top FILE).
//
//	make bench-delivery
func BenchmarkDelivery(b *testing.B) {
	sizes := []int{100, 500, 1000}
	if v := os.Getenv("FERRY_BENCH_APPS"); v != "" {
		sizes = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("FERRY_BENCH_APPS: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			for range b.N {
				benchmarkApps(b, n)
			}
		})
	}
	b.Run("push-to-applied", func(b *testing.B) {
		benchmarkPushes(b, func(v int) map[string]string {
			return map[string]string{"app/config.yaml": configMap(fmt.Sprintf("v%d", v))}
		})
	})
	b.Run("push-to-rolled-out", func(b *testing.B) {
		benchmarkPushes(b, func(v int) map[string]string { return map[string]string{"app/deployment.yaml": rolledDeployment(v)} })
	})
}

// rolledDeployment is the benchmark's Deployment with pod template version v: each new v is a
// rollout, healthy once the new Pod is available.
func rolledDeployment(v int) string {
	return strings.Replace(fmt.Sprintf(deployment, 1), "template:\n    metadata:\n",
		fmt.Sprintf("template:\n    metadata:\n      annotations: {version: \"%d\"}\n", v), 1)
}

// BenchmarkControlPlaneCeiling is the yardstick for BenchmarkDelivery: the same N apps
// server-side applied straight to the local control plane, one request per object and no
// Ferry, timed until every Deployment is available. It is what the control plane alone can
// do on this machine, so the apps/s of BenchmarkDelivery can be read against it. With
// FERRY_BENCH_APISERVER_PROFILE=FILE, its profile of kube-apiserver goes to FILE.ceiling.
//
//	FERRY_BENCH_APPS=1000 go test -run '^$' -bench ControlPlaneCeiling -benchtime 1x ./internal/delivery/
func BenchmarkControlPlaneCeiling(b *testing.B) {
	n := 1000
	if v := os.Getenv("FERRY_BENCH_APPS"); v != "" {
		var err error
		if n, err = strconv.Atoi(strings.Split(v, ",")[0]); err != nil {
			b.Fatalf("FERRY_BENCH_APPS: %v", err)
		}
	}
	for range b.N {
		b.StopTimer()
		quietPlane(b)
		e := newEnv(b, testenv.GitServerOptions{}, benchConcurrency)
		var objs []*unstructured.Unstructured
		for i := range n {
			name := fmt.Sprintf("app-%04d", i)
			for _, doc := range []string{fmt.Sprintf(deployment, 1), service, configMap("hello")} {
				u := &unstructured.Unstructured{}
				if err := yaml.Unmarshal([]byte(strings.ReplaceAll(doc, "web", name)), &u.Object); err != nil {
					b.Fatal(err)
				}
				u.SetNamespace(e.ns)
				objs = append(objs, u)
			}
		}
		b.StartTimer()
		profileAPIServer(b, ".ceiling")
		cpu := readCPU(b)
		start := time.Now()
		sem := make(chan struct{}, benchConcurrency)
		var wg sync.WaitGroup
		for _, o := range objs {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := e.c.Apply(b.Context(), client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("bench"), client.ForceOwnership); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		// A List of every Deployment once a second: cheap next to the work measured.
		for deadline := time.Now().Add(15 * time.Minute); ; time.Sleep(time.Second) {
			var list appsv1.DeploymentList
			if err := e.c.List(b.Context(), &list, client.InNamespace(e.ns)); err != nil {
				b.Fatal(err)
			}
			ready := 0
			for _, d := range list.Items {
				if d.Status.AvailableReplicas == 1 && d.Status.ObservedGeneration == d.Generation {
					ready++
				}
			}
			if ready == n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d deployments available after 15m", ready, n)
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "apps/s")
		b.ReportMetric(elapsed.Seconds(), "s-to-all-available")
		reportCPU(b, cpu, n, elapsed)
	}
}

func benchmarkApps(b *testing.B, n int) {
	b.StopTimer()
	quietPlane(b)
	e := newEnv(b, testenv.GitServerOptions{}, benchConcurrency)
	files := map[string]string{}
	for i := range n {
		dir := fmt.Sprintf("apps/app-%04d/", i)
		files[dir+"deployment.yaml"] = strings.ReplaceAll(fmt.Sprintf(deployment, 1), "web", fmt.Sprintf("app-%04d", i))
		files[dir+"service.yaml"] = strings.ReplaceAll(service, "web", fmt.Sprintf("app-%04d", i))
		files[dir+"config.yaml"] = strings.ReplaceAll(configMap("hello"), "web", fmt.Sprintf("app-%04d", i))
	}
	sha := e.commit(files, fmt.Sprintf("%d apps", n))

	b.StartTimer()
	profileAPIServer(b, "")
	cpu := readCPU(b)
	start := time.Now()
	for i := range n {
		e.createApp(fmt.Sprintf("app-%04d", i), func(a *v1alpha1.Application) {
			a.Spec.Source.Path = fmt.Sprintf("apps/app-%04d", i)
			a.Spec.SyncPolicy.Interval = &metav1.Duration{Duration: 10 * time.Minute}
		})
	}
	failed := e.waitAll(n, sha, 15*time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(n)/elapsed.Seconds(), "apps/s")
	b.ReportMetric(float64(failed), "failed-syncs")
	b.ReportMetric(elapsed.Seconds(), "s-to-all-healthy")
	b.ReportMetric(peakRSSMiB(b), "peak-RSS-MiB")
	e.requests.report(b, n)
	reportCPU(b, cpu, n, elapsed)
}

// quietPlane waits until the control plane has deleted the namespaces of earlier runs, so
// that a run is not measured while the plane also deletes a thousand apps' objects (each
// env deletes its namespace when it ends, and the plane takes a minute or more to empty it).
func quietPlane(b *testing.B) {
	b.Helper()
	c, err := client.New(plane.Config, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for deadline := start.Add(15 * time.Minute); ; time.Sleep(time.Second) {
		var list corev1.NamespaceList
		if err := c.List(b.Context(), &list); err != nil {
			b.Fatal(err)
		}
		terminating := 0
		for _, ns := range list.Items {
			if ns.DeletionTimestamp != nil {
				terminating++
			}
		}
		if terminating == 0 {
			if waited := time.Since(start); waited > time.Second {
				b.Logf("waited %s for earlier runs' namespaces to be deleted", waited.Round(time.Second))
			}
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d namespace(s) still being deleted after 15m", terminating)
		}
	}
}

// benchmarkPushes pushes 50 single-app commits, version v's files made by files(v), and
// refreshes the way the push webhook does, timing each from the push until the Application is
// Ready at the new commit (for a Deployment's rollout, until its new Pod is available).
func benchmarkPushes(b *testing.B, files func(v int) map[string]string) {
	for range b.N {
		b.StopTimer()
		quietPlane(b)
		e := newEnv(b, testenv.GitServerOptions{}, benchConcurrency)
		sha := e.commit(files(0), "v0")
		e.createApp("web", func(a *v1alpha1.Application) { a.Spec.SyncPolicy.Interval = &metav1.Duration{Duration: time.Hour} })
		e.waitApp("web", "v0", readyAt(sha))
		b.StartTimer()

		var took []time.Duration
		for i := 1; i <= 50; i++ {
			start := time.Now()
			sha := e.commit(files(i), fmt.Sprintf("v%d", i))
			if _, err := e.rec.Refresh(b.Context(), func(*v1alpha1.Application) bool { return true }); err != nil {
				b.Fatal(err)
			}
			e.waitApp("web", "v"+strconv.Itoa(i), readyAt(sha))
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		b.StopTimer()
		b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(took[len(took)*99/100].Milliseconds()), "p99-ms")
	}
}

// waitAll watches until each of n Applications has finished a sync of sha, and returns how
// many of those syncs failed. A sync succeeds only once its objects are healthy. Under this load
// kwok now and then leaves a Pod not Ready; such a sync fails on its health timeout and is
// counted, not retried. It watches rather than lists in a loop: listing a thousand
// Applications four times a second costs the API server as much as a tenth of what it spends
// on the syncs being measured.
func (e *env) waitAll(n int, sha string, limit time.Duration) int {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), limit)
	defer cancel()
	wc, err := client.NewWithWatch(plane.Config, client.Options{Scheme: e.c.Scheme()})
	if err != nil {
		e.t.Fatal(err)
	}
	results := map[string]string{} // name -> result of its sync of sha
	for {
		var list v1alpha1.ApplicationList
		if err := e.c.List(ctx, &list, client.InNamespace(e.appNS)); err != nil {
			e.t.Fatalf("%d of %d applications synced: %v", len(results), n, err)
		}
		for i := range list.Items {
			note(results, &list.Items[i], sha)
		}
		w, err := wc.Watch(ctx, &v1alpha1.ApplicationList{}, client.InNamespace(e.appNS),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			e.t.Fatalf("%d of %d applications synced: %v", len(results), n, err)
		}
		for ev := range w.ResultChan() {
			if app, ok := ev.Object.(*v1alpha1.Application); ok {
				note(results, app, sha)
			}
			if len(results) == n {
				break
			}
		}
		w.Stop()
		if len(results) == n {
			failed := 0
			for name, r := range results {
				if r != "succeeded" {
					failed++
					e.logFailure(name)
				}
			}
			return failed
		}
		if ctx.Err() != nil {
			e.t.Fatalf("%d of %d applications synced after %v", len(results), n, limit)
		}
	}
}

// logFailure logs why the Application name is not Ready, the first few times.
func (e *env) logFailure(name string) {
	var app v1alpha1.Application
	if err := e.c.Get(e.t.Context(), client.ObjectKey{Namespace: e.appNS, Name: name}, &app); err != nil {
		e.t.Log(err)
		return
	}
	if c := apimeta.FindStatusCondition(app.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		e.t.Logf("%s: %s: %s", name, c.Reason, c.Message)
	}
}

// note records the result of app's sync of sha, once it has one.
func note(results map[string]string, app *v1alpha1.Application, sha string) {
	if h := app.Status.History; len(h) > 0 && h[0].Revision == sha {
		results[app.Name] = h[0].Result
	}
}

// peakRSSMiB is this process's peak resident memory: the delivery controller, its git
// mirrors' bookkeeping and the test harness (the control plane and git run as other processes).
func peakRSSMiB(tb testing.TB) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				tb.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// benchConcurrency is the Reconciler concurrency of the benchmark, FERRY_BENCH_CONCURRENCY or 20
// (the concurrency of Flux's published benchmark).
var benchConcurrency = func() int {
	if n, err := strconv.Atoi(os.Getenv("FERRY_BENCH_CONCURRENCY")); err == nil && n > 0 {
		return n
	}
	return 20
}()
