package notify_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/webhook"
	"github.com/ferrycd/ferry/internal/release"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/store/storetest"
)

// arrivals is a fast webhook endpoint that notes when each delivery's request arrived.
type arrivals struct {
	mu sync.Mutex
	at map[int64]time.Time
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	id, _ := strconv.ParseInt(r.Header.Get(webhook.HeaderDelivery), 10, 64)
	a.mu.Lock()
	if _, dup := a.at[id]; !dup {
		a.at[id] = now
	}
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// BenchmarkOutbox measures the outbox end to end on each driver: timeline events recorded as
// delivery records them, each routed to 8 channels, delivered over HTTP by the real webhook
// receiver to a fast local endpoint.
//
//   - throughput: 250 events (2,000 messages) committed at once, until the last request
//     arrives: msgs/s.
//   - latency: 200 events one after another, 10 ms apart, each timed from its commit to the
//     arrival of its first message's request: p50-ms, p99-ms.
func BenchmarkOutbox(b *testing.B) {
	for _, d := range storetest.Drivers {
		b.Run(d.Name, func(b *testing.B) {
			db, err := store.Open(b.Context(), d.URL(b), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			arr := &arrivals{at: map[int64]time.Time{}}
			srv := httptest.NewServer(arr)
			defer srv.Close()
			var channels []*notify.Channel
			var names []string
			for i := range 8 {
				name := fmt.Sprintf("c%d", i)
				rcv, err := webhook.New(webhook.Config{}, notify.StaticSecret(srv.URL), notify.StaticSecret("s"), srv.Client())
				if err != nil {
					b.Fatal(err)
				}
				tmpl, err := notify.NewTemplates(notify.FormatPlain, nil)
				if err != nil {
					b.Fatal(err)
				}
				channels = append(channels, &notify.Channel{Name: name, Type: "webhook", Receiver: rcv, Templates: tmpl})
				names = append(names, name)
			}
			router, err := notify.NewRouter(names, []notify.Subscription{{Channels: names, On: []string{"*"}}})
			if err != nil {
				b.Fatal(err)
			}
			w := notify.NewWorker(db, channels, notify.WorkerOptions{Owner: "bench"})
			done := make(chan error, 1)
			ctx, cancel := contextWithCancel(b)
			go func() { done <- w.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()

			rel := &release.Release{Application: "web", Environment: "production", Revision: "abc", StartedAt: time.Now()}
			if err := db.CreateRelease(b.Context(), rel); err != nil {
				b.Fatal(err)
			}
			record := func() time.Time {
				ev := notify.Event{Type: notify.EventDeploySucceeded, Time: time.Now(), Summary: "deployed", Application: "web", Environment: "production"}
				notes, _ := router.Route(ev, nil)
				if _, err := db.RecordEvent(b.Context(), &release.Event{ReleaseID: rel.ID, Type: release.EventDeploySucceeded,
					Time: ev.Time, Summary: "deployed"}, notes); err != nil {
					b.Fatal(err)
				}
				committed := time.Now()
				w.Kick()
				return committed
			}
			waitFor := func(n int) {
				deadline := time.Now().Add(5 * time.Minute)
				for arr.count() < n {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d messages arrived in 5m", arr.count(), n)
					}
					time.Sleep(time.Millisecond)
				}
			}
			var throughput, p50, p99 float64
			for b.Loop() {
				base := arr.count()
				start := time.Now()
				for range 250 {
					record()
				}
				waitFor(base + 2000)
				throughput = 2000 / time.Since(start).Seconds()

				var lat []time.Duration
				for range 200 {
					before := arr.count()
					committed := record()
					waitFor(before + 1)
					first := time.Time{}
					arr.mu.Lock()
					for _, t := range arr.at {
						if t.After(committed) && (first.IsZero() || t.Before(first)) {
							first = t
						}
					}
					arr.mu.Unlock()
					lat = append(lat, first.Sub(committed))
					waitFor(before + 8)
					time.Sleep(10 * time.Millisecond)
				}
				slices.Sort(lat)
				p50 = float64(lat[len(lat)/2]) / float64(time.Millisecond)
				p99 = float64(lat[len(lat)*99/100]) / float64(time.Millisecond)
			}
			b.ReportMetric(throughput, "msgs/s")
			b.ReportMetric(p50, "p50-ms")
			b.ReportMetric(p99, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
