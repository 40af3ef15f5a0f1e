package app

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/store/storetest"
)

// The fixed work of one BenchmarkIncidentIngest iteration, so that -benchtime 1x measures
// the same thing every run: ingestAlerts posts over a working set of ingestWorkingSet alerts.
const (
	ingestAlerts     = 20000
	ingestWorkingSet = 500
)

var (
	// ingestEvents are the events of each resource in the working set: two alerts a host.
	ingestEvents = []string{"HighLoad", "DiskFull"}
	// ingestSeverities are what working-set alerts move between; none is of the normal
	// class, which would close them.
	ingestSeverities = []string{"warning", "minor", "major", "critical"}
)

// BenchmarkIncidentIngest measures ferry server (delivery and notifications off) receiving
// Alerta alerts on POST /api/alert over HTTP with keep-alive connections and a write-scope
// API key, on each store driver, from 1 and from 16 concurrent senders.
//
// After 500 working-set alerts (250 hosts × 2 events) are stored, each iteration posts
// 20,000 alerts: 80 % duplicates of a working-set alert at its current severity, 10 %
// correlated (a working-set alert at another severity) and 10 % new (an alert on a new
// host). Each sender owns a share of the working set, so it knows which answer each post
// must get, and the run fails when the server's answers or the stored alerts disagree.
//
// It reports alerts/s; the p50, p99 and longest latency of a post as its sender sees it (the
// longest shows stalls, such as a slow fsync, that the others leave unexplained); the CPU
// time the process spent per alert; and the peak RSS during the iterations. CPU
// and RSS are the whole test process's: server, store driver and senders (the control
// plane that TestMain starts runs in processes of its own).
func BenchmarkIncidentIngest(b *testing.B) {
	for _, d := range storetest.Drivers {
		b.Run(d.Name, func(b *testing.B) {
			for _, senders := range []int{1, 16} {
				b.Run("senders="+strconv.Itoa(senders), func(b *testing.B) { benchIngest(b, d.URL(b), senders) })
			}
		})
	}
}

func benchIngest(b *testing.B, storeURL string, senders int) {
	base, db := serveIncidents(b, storeURL)
	secret, hash, prefix := apikey.Generate()
	if _, err := db.CreateAPIKey(b.Context(), "bench", []apikey.Scope{apikey.ScopeWrite}, hash, prefix, nil); err != nil {
		b.Fatal(err)
	}
	l := &ingestLoad{
		url: base + "/api/alert",
		// The headers the benchmark's net/http client sent before this sender, so that
		// the server's work per request stays the same.
		headers: []string{"User-Agent: Go-http-client/1.1", "Content-Type: application/json", "Accept-Encoding: gzip",
			"Authorization: Key " + secret},
		sev:    make([]int, ingestWorkingSet),
		bodies: make([][][]byte, ingestWorkingSet),
	}
	setup, err := dialSender(l.url, l.headers...)
	if err != nil {
		b.Fatal(err)
	}
	defer setup.close()
	for i := range ingestWorkingSet {
		l.sev[i] = i % len(ingestSeverities)
		for _, sev := range ingestSeverities {
			l.bodies[i] = append(l.bodies[i], alertaBody(fmt.Sprintf("host-%03d", i/len(ingestEvents)), ingestEvents[i%len(ingestEvents)], sev))
		}
		if _, _, err := l.post(setup, l.bodies[i][l.sev[i]]); err != nil {
			b.Fatal(err)
		}
	}

	// Peak RSS from here on: the garbage of earlier sub-benchmarks returned, the
	// high-water mark reset (Linux's clear_refs).
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS is the process's since it started: reset it: %v", err)
	}

	var (
		elapsed                      time.Duration
		latencies                    []time.Duration
		duplicates, repeats, newOnes int
		iteration                    uint64
	)
	cpuBefore := cpuTime(b)
	for b.Loop() {
		iteration++
		results := make([]ingestResult, senders)
		var wg sync.WaitGroup
		start := time.Now()
		for s := range senders {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(iteration, uint64(s)))
				results[s] = l.send(rng, s, senders, ingestAlerts/senders)
			})
		}
		wg.Wait()
		elapsed += time.Since(start)
		for _, r := range results {
			if r.err != nil {
				b.Fatal(r.err)
			}
			latencies = append(latencies, r.latencies...)
			duplicates += r.duplicates
			repeats += r.repeats
			newOnes += r.new
		}
	}
	cpu := cpuTime(b) - cpuBefore

	if repeats != duplicates {
		b.Errorf("the server took %d alerts for duplicates, want %d", repeats, duplicates)
	}
	list, err := db.FindAlerts(context.Background(), incident.Query{Page: 1, PageSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	if stored := ingestWorkingSet + newOnes; list.Total != stored {
		b.Errorf("%d alerts stored, want %d: the working set and one for each new alert", list.Total, stored)
	}

	reportLoad(b, "alert", latencies, elapsed, cpu)
}

// reportLoad reports a load run: items/s, the p50, p99 and longest latency, CPU per item and
// the peak RSS since the last reset.
func reportLoad(b *testing.B, item string, latencies []time.Duration, elapsed, cpu time.Duration) {
	slices.Sort(latencies)
	ms := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), item+"s/s")
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(latencies)), "cpu-us/"+item)
	b.ReportMetric(procStatusMiB(b, "VmHWM"), "peak-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

// serveIncidents runs ferry server on storeURL with delivery and notifications off, as start
// does for tests, and returns its base URL and its store.
func serveIncidents(b *testing.B, storeURL string) (string, *store.DB) {
	b.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(b.TempDir(), "data")
	cfg.Delivery.Enabled = false
	cfg.Store = storeURL
	if err := cfg.Resolve(); err != nil {
		b.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	a, err := New(b.Context(), Options{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run = %v, want a clean stop", err)
		}
	})
	return "http://" + a.Addr(), a.Store()
}

// ingestLoad is the load generator: where and how to post, and the working set. Sender s
// owns the working-set alerts i with i % senders == s, and alone reads and writes sev[i].
type ingestLoad struct {
	url string
	// headers are each post's, besides Host and Content-Length (see sender).
	headers []string
	// sev is the index in ingestSeverities of each working-set alert's stored severity.
	sev []int
	// bodies are the working-set alerts at each severity, built once.
	bodies [][][]byte
	// hosts numbers the new hosts across senders and iterations.
	hosts atomic.Int64
}

// ingestResult is what one sender saw.
type ingestResult struct {
	latencies []time.Duration
	// duplicates and new count the posts of each kind sent; repeats, the answers that
	// said the alert was a duplicate.
	duplicates, new, repeats int
	err                      error
}

// send posts n alerts as sender s of senders, in the benchmark's mix, on a connection of
// its own.
func (l *ingestLoad) send(rng *rand.Rand, s, senders, n int) ingestResult {
	var owned []int
	for i := s; i < ingestWorkingSet; i += senders {
		owned = append(owned, i)
	}
	r := ingestResult{latencies: make([]time.Duration, 0, n)}
	conn, err := dialSender(l.url, l.headers...)
	if err != nil {
		r.err = err
		return r
	}
	defer conn.close()
	for range n {
		var body []byte
		switch p := rng.IntN(100); {
		case p < 80: // a duplicate
			i := owned[rng.IntN(len(owned))]
			body = l.bodies[i][l.sev[i]]
			r.duplicates++
		case p < 90: // correlated: the same alert at another severity
			i := owned[rng.IntN(len(owned))]
			l.sev[i] = (l.sev[i] + 1 + rng.IntN(len(ingestSeverities)-1)) % len(ingestSeverities)
			body = l.bodies[i][l.sev[i]]
		default:
			body = alertaBody(fmt.Sprintf("new-%06d", l.hosts.Add(1)), ingestEvents[0], ingestSeverities[2])
			r.new++
		}
		repeat, latency, err := l.post(conn, body)
		if err != nil {
			r.err = err
			return r
		}
		r.latencies = append(r.latencies, latency)
		if repeat {
			r.repeats++
		}
	}
	return r
}

// post sends one alert on conn and reports whether the server took it as a duplicate, and
// how long the request took from the sender's side.
func (l *ingestLoad) post(conn *sender, body []byte) (repeat bool, latency time.Duration, err error) {
	status, reply, latency, err := conn.post(body)
	if err != nil {
		return false, 0, err
	}
	if status != http.StatusCreated {
		return false, 0, fmt.Errorf("POST /api/alert = %d %s, want 201", status, reply)
	}
	return bytes.Contains(reply, []byte(`"repeat":true`)), latency, nil
}

// alertaBody is an alert as an Alerta client (alerta-cli, the Python SDK) posts it.
func alertaBody(resource, event, severity string) []byte {
	return fmt.Appendf(nil, `{"resource":%q,"event":%q,"environment":"Production","severity":%q,`+
		`"service":["web"],"group":"Performance","value":"high","text":"%s on %s",`+
		`"tags":["dc=eu1","team=ops"],"attributes":{"region":"eu"},"origin":"bench","type":"benchAlert","timeout":86400}`,
		resource, event, severity, event, resource)
}

// cpuTime is the user and system CPU time the process has used: the server's and the
// senders' (and the idle parts of the harness), which contention for the CPUs with other
// processes changes less than it changes alerts/s.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusMiB reads a size field of /proc/self/status (VmHWM, VmRSS) in MiB.
func procStatusMiB(b *testing.B, field string) float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("/proc/self/status has no %s", field)
	return 0
}
