package delivery_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/testenv"
)

// BenchmarkDelivery measures what ANCHORS.md compares with Flux: one git repository with N
// apps (each a 1-replica Deployment, a Service and a ConfigMap in its own directory), N
// Applications created at once, and the time until every one is Ready and Healthy on the local
// control plane. FERRY_BENCH_APPS overrides the sizes (comma-separated).
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
	b.Run("push-to-applied", benchmarkPushes)
}

func benchmarkApps(b *testing.B, n int) {
	b.StopTimer()
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
}

// benchmarkPushes pushes 50 single-app commits and refreshes the way the push webhook does,
// timing each from the push until the Application is Ready at the new commit.
func benchmarkPushes(b *testing.B) {
	for range b.N {
		b.StopTimer()
		e := newEnv(b, testenv.GitServerOptions{}, benchConcurrency)
		sha := e.commit(map[string]string{"app/config.yaml": configMap("v0")}, "v0")
		e.createApp("web", func(a *v1alpha1.Application) { a.Spec.SyncPolicy.Interval = &metav1.Duration{Duration: time.Hour} })
		e.waitApp("web", "v0", readyAt(sha))
		b.StartTimer()

		var took []time.Duration
		for i := 1; i <= 50; i++ {
			start := time.Now()
			sha := e.commit(map[string]string{"app/config.yaml": configMap(fmt.Sprintf("v%d", i))}, fmt.Sprintf("v%d", i))
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

// waitAll polls until each of n Applications has finished a sync of sha, and returns how many
// of those syncs failed. A sync succeeds only once its objects are healthy. Under this load
// kwok now and then leaves a Pod not Ready; such a sync fails on its health timeout and is
// counted, not retried.
func (e *env) waitAll(n int, sha string, limit time.Duration) int {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var list v1alpha1.ApplicationList
		if err := e.c.List(e.t.Context(), &list, client.InNamespace(e.appNS)); err != nil {
			e.t.Fatal(err)
		}
		done, failed := 0, 0
		for _, app := range list.Items {
			if h := app.Status.History; len(h) > 0 && h[0].Revision == sha {
				done++
				if h[0].Result != "succeeded" {
					failed++
				}
			}
		}
		if done == n {
			return failed
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d of %d applications synced after %v", done, n, limit)
		}
		time.Sleep(250 * time.Millisecond)
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
