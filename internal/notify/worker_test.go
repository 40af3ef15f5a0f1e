package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/telegram"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/store/storetest"
)

// recorder is a receiver that records what it is sent and answers with script, in order;
// past the script's end it accepts everything.
type recorder struct {
	mu     sync.Mutex
	got    []notify.Message
	calls  int
	script []error
	delay  time.Duration // each send takes this long
}

func (r *recorder) Send(_ context.Context, m notify.Message) error {
	time.Sleep(r.delay)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.script) > 0 {
		err := r.script[0]
		r.script = r.script[1:]
		if err != nil {
			return err
		}
	}
	r.got = append(r.got, m)
	return nil
}

func (r *recorder) messages() []notify.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func openStore(t *testing.T, url string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func channelOf(t *testing.T, name string, r notify.Receiver) *notify.Channel {
	t.Helper()
	tmpl, err := notify.NewTemplates(notify.FormatPlain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &notify.Channel{Name: name, Type: "test", Receiver: r, Templates: tmpl}
}

// run starts w until the test ends.
func run(t *testing.T, w *notify.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Worker.Run: %v", err)
		}
	})
}

func enqueue(t *testing.T, db *store.DB, w *notify.Worker, channel string, n int) []int64 {
	t.Helper()
	var notes []notify.Notification
	for i := range n {
		notes = append(notes, notify.Notification{Channel: channel, Key: fmt.Sprintf("%s-%d-%d", channel, time.Now().UnixNano(), i),
			Event: notify.Event{Type: "deploy.succeeded", Application: fmt.Sprintf("app-%d", i), Time: time.Now()}})
	}
	ids, err := db.EnqueueNotifications(t.Context(), notes)
	if err != nil {
		t.Fatal(err)
	}
	if w != nil {
		w.Kick()
	}
	return ids
}

// settled waits until no notification is pending and returns them all, oldest first.
func settled(t *testing.T, db *store.DB) []notify.Notification {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := db.Outbox(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notifications still pending after 60s", st.Pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	page, err := db.FindNotifications(t.Context(), notify.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(page.Notifications)
	return page.Notifications
}

func apps(ms []notify.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Event.Application)
	}
	return out
}

func forEachDriver(t *testing.T, fn func(t *testing.T, url func(testing.TB) string)) {
	for _, d := range storetest.Drivers {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, d.URL)
		})
	}
}

func TestWorkerRetriesInOrderAndGivesUp(t *testing.T) {
	forEachDriver(t, func(t *testing.T, url func(testing.TB) string) {
		db := openStore(t, url(t))
		unavailable := &notify.SendError{Status: 503, Err: errors.New("Service Unavailable")}
		flaky := &recorder{script: []error{unavailable, unavailable, nil, unavailable}}
		broken := &recorder{script: slices.Repeat([]error{unavailable}, 10)}
		refused := &recorder{script: []error{&notify.SendError{Status: 400, Permanent: true, Err: errors.New("Bad Request: chat not found")}}}
		reg := prometheus.NewRegistry()
		w := notify.NewWorker(db, []*notify.Channel{channelOf(t, "flaky", flaky), channelOf(t, "broken", broken), channelOf(t, "refused", refused)},
			notify.WorkerOptions{Registerer: reg, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxAttempts: 3, Owner: "w"})
		enqueue(t, db, nil, "flaky", 4)
		enqueue(t, db, nil, "broken", 1)
		enqueue(t, db, nil, "refused", 2)
		run(t, w)
		all := settled(t, db)

		// Retried messages keep their place: app-0 went out first, after two failures.
		if got, want := apps(flaky.messages()), []string{"app-0", "app-1", "app-2", "app-3"}; !slices.Equal(got, want) {
			t.Errorf("flaky channel got %v, want %v (each once, in order)", got, want)
		}
		// A permanent error fails at once; the channel goes on with its next message.
		if got, want := apps(refused.messages()), []string{"app-1"}; !slices.Equal(got, want) {
			t.Errorf("refused channel got %v, want %v", got, want)
		}
		if broken.calls != 3 {
			t.Errorf("broken channel tried %d times, want MaxAttempts = 3", broken.calls)
		}
		byStatus := map[string][]string{}
		for _, n := range all {
			byStatus[string(n.Status)] = append(byStatus[string(n.Status)], n.Channel+"/"+n.Event.Application)
			if n.Status == notify.StatusFailed && n.LastError == "" {
				t.Errorf("failed notification %d has no error", n.ID)
			}
		}
		if got, want := byStatus["failed"], []string{"broken/app-0", "refused/app-0"}; !slices.Equal(got, want) {
			t.Errorf("failed = %v, want %v", got, want)
		}
		if got := testutil.ToFloat64(metric(t, reg, "ferry_notifications_total", "broken", "failed")); got != 1 {
			t.Errorf("ferry_notifications_total{channel=broken,result=failed} = %v, want 1", got)
		}
		if got := testutil.ToFloat64(metric(t, reg, "ferry_notifications_total", "flaky", "retry")); got != 3 {
			t.Errorf("ferry_notifications_total{channel=flaky,result=retry} = %v, want 3", got)
		}
	})
}

// metric finds one series of a counter vector in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, l := range m.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			if slices.Equal(vals, labels) {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return nil
}

// fakeTelegram is the Bot API's sendMessage, rate-limiting as Telegram does: it answers 429
// with parameters.retry_after to every request in a storm, and to any request closer than a
// second to the previous one it accepted in the same chat.
type fakeTelegram struct {
	mu       sync.Mutex
	storm    int // requests still to be refused
	accepted []string
	lastOK   time.Time
	refusals int
}

func (f *fakeTelegram) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var req struct {
		ChatID any    `json:"chat_id"`
		Text   string `json:"text"`
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/sendMessage") || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, `{"ok":false,"error_code":400,"description":"Bad Request"}`, http.StatusBadRequest)
		return
	}
	tooSoon := !f.lastOK.IsZero() && time.Since(f.lastOK) < time.Second
	if f.storm > 0 || tooSoon {
		if f.storm > 0 {
			f.storm--
		}
		f.refusals++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = fmt.Fprint(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}`)
		return
	}
	f.lastOK = time.Now()
	f.accepted = append(f.accepted, req.Text)
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprint(w, `{"ok":true,"result":{"message_id":1}}`)
}

// TestWorker429Storm sends through the real Telegram receiver to a Bot API that answers a
// storm of 429s: the messages arrive late, in order, none lost, none doubled, and the
// worker's own pacing keeps later messages from tripping the per-chat limit.
func TestWorker429Storm(t *testing.T) {
	forEachDriver(t, func(t *testing.T, url func(testing.TB) string) {
		db := openStore(t, url(t))
		fake := &fakeTelegram{storm: 3}
		srv := httptest.NewServer(fake)
		t.Cleanup(srv.Close)
		tg, err := telegram.New(telegram.Config{ChatID: "-1001234567890", APIURL: srv.URL},
			func(context.Context) (string, error) { return "123456:secret-token", nil }, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := notify.NewTemplates(notify.FormatHTML, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch := &notify.Channel{Name: "releases", Type: "telegram", Receiver: tg, Templates: tmpl,
			ChatKey: tg.ChatKey(), MinInterval: telegram.MinInterval}
		// MaxAttempts 1: a 429 must never count against the budget.
		w := notify.NewWorker(db, []*notify.Channel{ch}, notify.WorkerOptions{MaxAttempts: 1, Owner: "w"})
		enqueue(t, db, nil, "releases", 4)
		run(t, w)
		all := settled(t, db)

		fake.mu.Lock()
		defer fake.mu.Unlock()
		var order []string
		for _, text := range fake.accepted {
			for i := range 4 {
				if strings.Contains(text, fmt.Sprintf("app-%d ", i)) {
					order = append(order, fmt.Sprintf("app-%d", i))
				}
			}
		}
		if want := []string{"app-0", "app-1", "app-2", "app-3"}; !slices.Equal(order, want) {
			t.Errorf("Telegram accepted %v, want %v", order, want)
		}
		if fake.refusals != 3 {
			t.Errorf("%d requests refused, want only the storm's 3: pacing must keep ≥1s between messages", fake.refusals)
		}
		for _, n := range all {
			if n.Status != notify.StatusSent || n.Attempts != 0 {
				t.Errorf("notification %d: %s after %d counted failures, want sent with none counted", n.ID, n.Status, n.Attempts)
			}
		}
	})
}

// TestSlowSendKeepsItsLease sends through a receiver that takes several leases' time, with a
// second worker watching the outbox: the lease is renewed during the send, so the second
// worker never takes the message over and it is sent once.
func TestSlowSendKeepsItsLease(t *testing.T) {
	db := openStore(t, storetest.SQLiteURL(t))
	rec := &recorder{delay: time.Second}
	opts := func(owner string) notify.WorkerOptions {
		return notify.WorkerOptions{Owner: owner, Lease: 150 * time.Millisecond, Poll: 20 * time.Millisecond}
	}
	w1 := notify.NewWorker(db, []*notify.Channel{channelOf(t, "slow", rec)}, opts("w1"))
	w2 := notify.NewWorker(db, []*notify.Channel{channelOf(t, "slow", rec)}, opts("w2"))
	run(t, w1)
	run(t, w2)
	enqueue(t, db, w1, "slow", 2)
	all := settled(t, db)
	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	if calls != 2 || len(all) != 2 || all[0].Status != notify.StatusSent || all[1].Status != notify.StatusSent {
		t.Errorf("%d sends of 2 messages (%+v); a lease renewed while sending must keep the other worker out", calls, all)
	}
}

// TestWorkersShareOutbox runs two workers, as two replicas do, on separate connections to one
// database: every message is sent once, each channel in order.
func TestWorkersShareOutbox(t *testing.T) {
	forEachDriver(t, func(t *testing.T, url func(testing.TB) string) {
		u := url(t)
		db1, db2 := openStore(t, u), openStore(t, u)
		recs := map[string]*recorder{}
		var channels []string
		for i := range 4 {
			name := fmt.Sprintf("c%d", i)
			channels = append(channels, name)
			recs[name] = &recorder{}
		}
		chans := func() []*notify.Channel {
			var out []*notify.Channel
			for _, name := range channels {
				out = append(out, channelOf(t, name, recs[name]))
			}
			return out
		}
		w1 := notify.NewWorker(db1, chans(), notify.WorkerOptions{Owner: "replica-1", Poll: 10 * time.Millisecond})
		w2 := notify.NewWorker(db2, chans(), notify.WorkerOptions{Owner: "replica-2", Poll: 10 * time.Millisecond})
		run(t, w1)
		run(t, w2)
		const each = 25
		for _, name := range channels {
			enqueue(t, db1, w1, name, each)
			w2.Kick()
		}
		all := settled(t, db2)
		if len(all) != len(channels)*each {
			t.Fatalf("%d notifications, want %d", len(all), len(channels)*each)
		}
		for _, name := range channels {
			got := apps(recs[name].messages())
			var want []string
			for i := range each {
				want = append(want, fmt.Sprintf("app-%d", i))
			}
			if !slices.Equal(got, want) {
				t.Errorf("channel %s got %v, want each once in order", name, got)
			}
		}
	})
}

func contextWithCancel(tb testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.WithoutCancel(tb.Context()))
}

// TestAlertBurstIsOneMessage queues a burst of alerts, a deploy, and two more alerts for one
// channel: the alerts of each run go out as one grouped message, the deploy alone, in order.
func TestAlertBurstIsOneMessage(t *testing.T) {
	forEachDriver(t, func(t *testing.T, url func(testing.TB) string) {
		db := openStore(t, url(t))
		rec := &recorder{}
		w := notify.NewWorker(db, []*notify.Channel{channelOf(t, "ops", rec)},
			notify.WorkerOptions{Owner: "w", GroupWait: 300 * time.Millisecond})
		var notes []notify.Notification
		add := func(typ, resource string) {
			notes = append(notes, notify.Notification{Channel: "ops", Key: fmt.Sprintf("k%d", len(notes)),
				Event: notify.Event{Type: typ, Object: resource, Time: time.Now(),
					Attributes: map[string]string{"severity": "major", "event": "DiskFull"}}})
		}
		for i := range 10 {
			add(notify.EventAlertRaised, fmt.Sprintf("db%d", i))
		}
		add(notify.EventDeploySucceeded, "")
		add(notify.EventAlertRaised, "db10")
		add(notify.EventAlertClosed, "db0")
		if _, err := db.EnqueueNotifications(t.Context(), notes); err != nil {
			t.Fatal(err)
		}
		run(t, w)
		all := settled(t, db)
		msgs := rec.messages()
		var titles []string
		for _, m := range msgs {
			titles = append(titles, m.Title)
		}
		if len(msgs) != 3 || !strings.HasPrefix(msgs[0].Title, "10 alerts: 10 raised") ||
			msgs[1].Event.Type != notify.EventDeploySucceeded || !strings.HasPrefix(msgs[2].Title, "2 alerts: 1 raised, 1 closed") {
			t.Errorf("messages = %q; want 10 alerts grouped, the deploy, then 2 alerts grouped", titles)
		}
		if n := strings.Count(msgs[0].Text, "DiskFull on db"); n != 10 {
			t.Errorf("the grouped message lists %d alerts, want 10:\n%s", n, msgs[0].Text)
		}
		for _, n := range all {
			if n.Status != notify.StatusSent {
				t.Errorf("notification %d is %s, want every one of the group sent", n.ID, n.Status)
			}
		}
	})
}
