package delivery_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// requestCounter counts the API requests the delivery controller sends, by method and
// resource, so that the benchmark can say what each app costs the control plane.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
	// took sums the time from sending each request to its response's headers, by kind.
	took map[string]time.Duration
}

func newRequestCounter() *requestCounter {
	return &requestCounter{counts: map[string]int{}, took: map[string]time.Duration{}}
}

// wrap is a rest.Config WrapTransport.
func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		kind, start := requestKind(req), time.Now()
		resp, err := rt.RoundTrip(req)
		c.mu.Lock()
		c.counts[kind]++
		if !strings.HasPrefix(kind, "WATCH ") {
			c.took[kind] += time.Since(start)
		}
		c.mu.Unlock()
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// requestKind names a request by its method and resource: "GET configmaps",
// "PATCH deployments (dry-run)", "PATCH applications/status", "WATCH applications".
func requestKind(req *http.Request) string {
	// /api/v1/namespaces/NS/RESOURCE/NAME/SUB or /apis/GROUP/VERSION/namespaces/NS/RESOURCE/NAME/SUB
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	if len(parts) > 0 && parts[0] == "apis" && len(parts) > 1 {
		parts = parts[1:] // the group
	}
	if len(parts) > 2 {
		parts = parts[2:] // past the version
	}
	if len(parts) > 2 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	resource := strings.Join(parts, "/")
	if len(parts) >= 2 {
		resource = parts[0]
		if len(parts) >= 3 {
			resource += "/" + parts[2]
		}
	}
	method := req.Method
	q := req.URL.Query()
	if q.Get("watch") == "true" {
		method = "WATCH"
	}
	if len(parts) == 1 && method == http.MethodGet {
		method = "LIST"
	}
	kind := method + " " + resource
	if q.Has("dryRun") {
		kind += " (dry-run)"
	}
	return kind
}

// report adds the requests per app to b's metrics and logs them by kind, with their mean
// latency.
func (c *requestCounter) report(b *testing.B, apps int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(c.counts)) {
		total += c.counts[k]
		lines = append(lines, fmt.Sprintf("%6.2f  %-36s mean %v", float64(c.counts[k])/float64(apps), k,
			(c.took[k]/time.Duration(c.counts[k])).Round(100*time.Microsecond)))
	}
	b.ReportMetric(float64(total)/float64(apps), "api-req/app")
	b.Logf("API requests per app, by kind:\n%s", strings.Join(lines, "\n"))
}

// profileAPIServer writes a CPU profile of kube-apiserver during the run to the file
// FERRY_BENCH_APISERVER_PROFILE names, if set, with suffix added: 20 seconds from the 8th,
// when the syncs are in full flow. The API server serves /debug/pprof to its admin.
func profileAPIServer(b *testing.B, suffix string) {
	path := os.Getenv("FERRY_BENCH_APISERVER_PROFILE")
	if path == "" {
		return
	}
	path += suffix
	cs, err := kubernetes.NewForConfig(plane.Config)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		time.Sleep(8 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		raw, err := cs.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", "20").DoRaw(ctx)
		if err == nil {
			err = os.WriteFile(path, raw, 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "kube-apiserver profile: %v\n", err)
		}
	}()
}

// cpuUse is the CPU time of each control-plane component, of this process (the delivery
// controller and the harness) and of its exited children (git), at one moment.
type cpuUse map[string]time.Duration

func readCPU(b *testing.B) cpuUse {
	use, err := plane.CPUTimes()
	if err != nil {
		b.Fatal(err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	use["ferry (this process)"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// The git commands Ferry runs and the test git server's http-backend CGI processes are
	// this process's children; their CPU counts once they have exited. The plane's
	// processes are children too but run until the end, so they never count here.
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	use["git (exited children)"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return use
}

// reportCPU reports the CPU milliseconds per app that kube-apiserver spent since before, and
// logs each process's share: who spent the two cores while the apps synced.
func reportCPU(b *testing.B, before cpuUse, apps int, elapsed time.Duration) {
	after := readCPU(b)
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(after)) {
		used := after[name] - before[name]
		lines = append(lines, fmt.Sprintf("%-22s %5.2f cores  %6.1f ms/app", name, used.Seconds()/elapsed.Seconds(),
			float64(used.Milliseconds())/float64(apps)))
		if name == "kube-apiserver" {
			b.ReportMetric(float64(used.Milliseconds())/float64(apps), "apiserver-cpu-ms/app")
		}
	}
	b.Logf("CPU by process during the run:\n%s", strings.Join(lines, "\n"))
}
