package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/testenv"
)

// The sizes the panel must stay fast at (issue 8): Argo CD's UI needs 35 s for 8k apps,
// Alerta's console slows at 10k alerts.
const (
	benchAlerts = 10000
	benchIssues = 10000
	benchApps   = 2000
)

// BenchmarkPanelLists measures how long ferry server takes to answer each list page of the
// panel, logged in, with 10,000 alerts, 10,000 error issues and 2,000 Applications stored:
// the first page, a filtered page and a deep page of each list, over HTTP on loopback (so
// the time is the server's plus a loopback round trip). The Applications are real objects
// on the test control plane, listed from the delivery engine's cache as in production; the
// alerts and issues go through the incident and error hubs into the SQLite store.
func BenchmarkPanelLists(b *testing.B) {
	if plane.Config == nil {
		b.Skip("needs the test control plane: set FERRY_TESTBIN (make testbin)")
	}
	pwFile := filepath.Join(b.TempDir(), "admin-password")
	if err := os.WriteFile(pwFile, []byte("bench admin password\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	a, base, _ := launchApp(b, func(c *config.Config) { c.Panel.AdminPasswordFile = pwFile })
	ctx := b.Context()
	fillAlerts(b, a)
	fillIssues(b, a)
	ns := fillApps(b)

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute}
	resp, err := hc.PostForm(base+"/login", url.Values{"name": {"admin"}, "password": {"bench admin password"}})
	if err != nil {
		b.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("login: %d", resp.StatusCode)
	}
	// Wait until the delivery engine's cache holds every Application.
	testenv.Eventually(b, "the cache lists every application", func() bool {
		list, err := clusterApps{engine: a.delivery.engine}.List(ctx)
		return err == nil && len(list) >= benchApps
	})
	pages := []struct{ name, path string }{
		{"apps", "/apps"},
		{"apps-filtered", "/apps?q=" + ns + "/app-01&sort=health"},
		{"apps-page-40", "/apps?page=40&sort=deployed"},
		{"incidents", "/incidents"},
		{"incidents-filtered", "/incidents?environment=production&severity=critical&q=host-1"},
		{"incidents-page-100", "/incidents?page=100"},
		{"issues", "/issues"},
		{"issues-filtered", "/issues?level=error&q=checkout"},
		{"issues-page-100", "/issues?page=100"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := hc.Get(base + p.path)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s: %d", p.path, resp.StatusCode)
				}
				b.SetBytes(n)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}

// parallel runs f(i) for i in [0, n) on 8 goroutines and fails b on the first error.
func parallel(b *testing.B, n int, f func(i int) error) {
	var (
		wg   sync.WaitGroup
		once sync.Once
		fail error
	)
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					once.Do(func() { fail = err })
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if fail != nil {
		b.Fatal(fail)
	}
}

var (
	benchSeverities   = []string{"critical", "major", "minor", "warning"}
	benchEnvironments = []string{"production", "stage", "dev"}
)

func fillAlerts(b *testing.B, a *App) {
	hub := incident.NewHub(a.Store(), incident.HubOptions{Rules: incident.Rules{Identity: incident.DefaultIdentity()}})
	parallel(b, benchAlerts, func(i int) error {
		_, err := hub.Receive(b.Context(), incident.Alert{
			Resource: "host-" + strconv.Itoa(i/2), Event: []string{"HighLoad", "DiskFull"}[i%2],
			Environment: benchEnvironments[i%3], Severity: incident.Severity(benchSeverities[i%4]),
			Service: []string{"svc-" + strconv.Itoa(i%40)}, Text: "load is high on host-" + strconv.Itoa(i/2),
		})
		return err
	})
}

func fillIssues(b *testing.B, a *App) {
	p, _, err := a.Store().CreateProject(b.Context(), errtrack.Project{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	hub := errtrack.NewHub(a.Store(), errtrack.HubOptions{})
	now := time.Now()
	parallel(b, benchIssues, func(i int) error {
		payload := fmt.Sprintf(`{"event_id":"%032x","platform":"go","level":"error","release":"shop@%07x",`+
			`"environment":"production","fingerprint":["bench-%d"],"exception":{"values":[{"type":"CheckoutError",`+
			`"value":"checkout failed for order %d","stacktrace":{"frames":[{"module":"main","function":"main","in_app":true},`+
			`{"module":"shop/checkout","function":"Charge","lineno":%d,"in_app":true}]}}]}}`, i+1, i%50, i, i, i%300)
		_, err := hub.Ingest(b.Context(), p.ID, []byte(payload), "", now)
		return err
	})
}

// fillApps creates benchApps suspended Applications (nothing to sync) with a status as
// synced apps have, and returns their namespace.
func fillApps(b *testing.B) string {
	scheme, err := delivery.Scheme()
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(plane.Config, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	ns := "panel-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	health := []v1alpha1.HealthState{v1alpha1.HealthHealthy, v1alpha1.HealthHealthy, v1alpha1.HealthProgressing, v1alpha1.HealthDegraded}
	testenv.Eventually(b, "Applications can be created", func() bool {
		return c.List(ctx, &v1alpha1.ApplicationList{}, client.InNamespace(ns)) == nil
	})
	parallel(b, benchApps, func(i int) error {
		app := &v1alpha1.Application{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%04d", i), Namespace: ns},
			Spec: v1alpha1.ApplicationSpec{
				Source:      v1alpha1.Source{RepoURL: "https://git.example.com/team/app-" + strconv.Itoa(i%100), Path: "deploy"},
				Destination: v1alpha1.Destination{Namespace: ns},
				Environment: benchEnvironments[i%3],
				Suspend:     true,
			},
		}
		if err := c.Create(ctx, app); err != nil {
			return err
		}
		at := metav1.NewTime(time.Now().Add(-time.Duration(i) * time.Minute))
		status, err := json.Marshal(map[string]any{"status": v1alpha1.ApplicationStatus{
			Sync:   v1alpha1.SyncStatus{Status: v1alpha1.SyncSynced, Revision: fmt.Sprintf("%040x", i)},
			Health: v1alpha1.HealthStatus{Status: health[i%4]},
			History: []v1alpha1.HistoryEntry{{ID: 1, Revision: fmt.Sprintf("%040x", i), DeployedAt: at,
				Result: "succeeded", ReleaseID: int64(i + 1)}},
		}})
		if err != nil {
			return err
		}
		// A merge patch, not an update: the reconciler may have written the status already.
		return c.Status().Patch(ctx, app, client.RawPatch(types.MergePatchType, status))
	})
	return ns
}
