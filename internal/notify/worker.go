package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outbox is what the worker needs from the store.
type Outbox interface {
	ClaimNotifications(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Notification, error)
	FinishNotification(ctx context.Context, id int64, owner string, a Attempt) error
	Outbox(ctx context.Context) (OutboxState, error)
	ExtendLease(ctx context.Context, id int64, owner string, until time.Time) error
	ClaimFollowers(ctx context.Context, owner, channel string, headID int64, prefix string, now time.Time,
		lease time.Duration, limit int) ([]Notification, error)
}

// Channel is a configured destination: a receiver and the templates that render for it.
type Channel struct {
	Name string
	// Type names the receiver: telegram, rocketchat, slack or webhook.
	Type      string
	Receiver  Receiver
	Templates *Templates
	// ChatKey names the chat the receiver posts to, without secrets; channels with the same
	// key share its rate limit. Empty means the channel's name.
	ChatKey string
	// MinInterval is the least time between two messages to the chat (Telegram: 1s).
	MinInterval time.Duration
}

// WorkerOptions tune the outbox worker. The zero value is ready to use.
type WorkerOptions struct {
	Logger *slog.Logger
	// Registerer receives the notification metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Owner names this worker in leases; it must be unique among the workers of one outbox.
	// Empty means the host name and a random suffix.
	Owner string
	// Lease is how long a claimed notification is held before another worker may take it;
	// the worker renews it every third of that while it sends, so it bounds how long the
	// messages of a crashed worker wait. Default 30s.
	Lease time.Duration
	// Poll is how often the outbox is read when nothing wakes the worker. Default 1s.
	Poll time.Duration
	// Concurrency is how many channels deliver at once. Default 8.
	Concurrency int
	// Backoff is the first retry delay, doubled per failure up to MaxBackoff. Defaults 1s, 5m.
	Backoff, MaxBackoff time.Duration
	// MaxAttempts is the retry budget: failures (429s excepted) before a notification is
	// marked failed. Default 10.
	MaxAttempts int
	// MaxAge gives up on a notification pending this long, 429s or not. Default 24h.
	MaxAge time.Duration
	// SendTimeout bounds one delivery. Default 30s.
	SendTimeout time.Duration
	// GroupWait is how long an alert notification waits, from its event, for others to the
	// same channel to join it; the alerts queued behind it then go out as one message, so a
	// burst is one message, not a flood. Default 2s; negative sends each alone.
	GroupWait time.Duration
	// MaxGroup bounds the alerts in one grouped message. Default 50.
	MaxGroup int
}

// groupPrefix is the event types that group: the incident hub's.
const groupPrefix = "alert."

func (o WorkerOptions) withDefaults() WorkerOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		o.Owner = host + "/" + hex.EncodeToString(b)
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.GroupWait == 0 {
		o.GroupWait = 2 * time.Second
	}
	if o.MaxGroup <= 0 {
		o.MaxGroup = 50
	}
	return o
}

// Worker delivers the outbox: it claims the head of each channel's queue, renders it, sends
// it, and records the outcome, retrying with exponential backoff and honouring the waits that
// services ask for. Several workers, in one process or across replicas, share one outbox.
type Worker struct {
	outbox   Outbox
	channels map[string]*Channel
	opts     WorkerOptions
	metrics  *workerMetrics
	wake     chan struct{}

	mu       sync.Mutex
	lastSent map[string]time.Time // by chat key
	chatLock map[string]*sync.Mutex
}

// NewWorker returns a worker delivering outbox to channels.
func NewWorker(outbox Outbox, channels []*Channel, opts WorkerOptions) *Worker {
	opts = opts.withDefaults()
	w := &Worker{
		outbox: outbox, channels: map[string]*Channel{}, opts: opts,
		metrics: newWorkerMetrics(opts.Registerer), wake: make(chan struct{}, 1),
		lastSent: map[string]time.Time{}, chatLock: map[string]*sync.Mutex{},
	}
	for _, c := range channels {
		if c.ChatKey == "" {
			c.ChatKey = "channel:" + c.Name
		}
		w.channels[c.Name] = c
		w.metrics.init(c.Name)
	}
	return w
}

// Kick wakes the worker: something was just written to the outbox. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the sends in flight.
func (w *Worker) Run(ctx context.Context) error {
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, w.opts.Concurrency)
		lastLoad time.Time
	)
	defer wg.Wait()
	for {
		free := w.opts.Concurrency - len(sem)
		var claimed []Notification
		if free > 0 {
			var err error
			claimed, err = w.outbox.ClaimNotifications(ctx, w.opts.Owner, time.Now(), w.opts.Lease, free)
			if err != nil && ctx.Err() == nil {
				w.opts.Logger.Warn("claim notifications", "err", err)
			}
		}
		for _, n := range claimed {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem; w.Kick() }()
				w.deliver(ctx, n)
			}()
		}
		wait := w.opts.Poll
		if time.Since(lastLoad) >= time.Second || len(claimed) > 0 {
			// The depth gauge, and an earlier wake-up for a retry due before the next poll.
			if st, err := w.outbox.Outbox(ctx); err == nil {
				lastLoad = time.Now()
				w.metrics.depth.Set(float64(st.Pending))
				if !st.NextDue.IsZero() {
					wait = min(wait, max(time.Until(st.NextDue), time.Millisecond))
				}
			}
		}
		if len(claimed) > 0 && free == len(claimed) {
			wait = 0 // the claim was full: more may be due
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-w.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// deliver sends one claimed notification and records the outcome.
func (w *Worker) deliver(ctx context.Context, n Notification) {
	log := w.opts.Logger.With("notification", n.ID, "channel", n.Channel, "event", n.Event.Type)
	ch := w.channels[n.Channel]
	stop := w.holdLease(ctx, n.ID)
	group := []Notification{n}
	attempt := Attempt{Status: StatusFailed}
	if ch == nil {
		// Removed from the configuration since it was queued.
		attempt.Error = fmt.Sprintf("channel %q is not configured", n.Channel)
	} else {
		var stopFollowers func()
		group, stopFollowers = w.gather(ctx, n, log)
		attempt = w.send(ctx, ch, group)
		stopFollowers()
	}
	stop() // before the outcome is recorded, which ends the lease
	if ctx.Err() != nil && attempt.Status != StatusSent {
		// Shutting down: the lease runs out and another worker, or the next start, retries.
		return
	}
	attempt.At = time.Now()
	// Record with a context of its own: a send that succeeded must be recorded even if the
	// server is stopping, or it would be sent again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, g := range group {
		if err := w.outbox.FinishNotification(rctx, g.ID, w.opts.Owner, attempt); err != nil {
			log.Warn("record notification outcome", "id", g.ID, "err", err)
			continue
		}
		switch attempt.Status {
		case StatusSent:
			w.metrics.result(g.Channel, "sent")
			w.metrics.latency.WithLabelValues(g.Channel).Observe(attempt.At.Sub(g.CreatedAt).Seconds())
		case StatusFailed:
			w.metrics.result(g.Channel, "failed")
		}
	}
	switch attempt.Status {
	case StatusSent:
		log.Debug("notification sent", "grouped", len(group))
	case StatusFailed:
		log.Warn("notification failed; giving up", "attempts", n.Attempts+1, "grouped", len(group), "err", attempt.Error)
	default:
		log.Info("notification will be retried", "at", attempt.Next, "grouped", len(group), "err", attempt.Error)
	}
}

// gather returns n with the alert notifications queued right behind it in its channel, after
// waiting GroupWait from n's event for a burst to arrive, and a function that ends the
// followers' leases' renewal. Other notifications go alone.
func (w *Worker) gather(ctx context.Context, n Notification, log *slog.Logger) ([]Notification, func()) {
	none := func() {}
	if w.opts.GroupWait < 0 || !strings.HasPrefix(n.Event.Type, groupPrefix) {
		return []Notification{n}, none
	}
	if wait := time.Until(n.CreatedAt.Add(w.opts.GroupWait)); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return []Notification{n}, none
		}
	}
	followers, err := w.outbox.ClaimFollowers(ctx, w.opts.Owner, n.Channel, n.ID, groupPrefix, time.Now(),
		w.opts.Lease, w.opts.MaxGroup-1)
	if err != nil {
		log.Warn("group alert notifications; sending alone", "err", err)
		return []Notification{n}, none
	}
	stops := make([]func(), 0, len(followers))
	for _, f := range followers {
		stops = append(stops, w.holdLease(ctx, f.ID))
	}
	return append([]Notification{n}, followers...), func() {
		for _, stop := range stops {
			stop()
		}
	}
}

// holdLease renews the lease on a notification every third of the lease until the returned
// function is called, so a slow send (a long Telegram pacing wait, a slow service) is not
// taken over by another worker while a crashed worker's messages still wait one lease at most.
func (w *Worker) holdLease(ctx context.Context, id int64) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(w.opts.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := w.outbox.ExtendLease(ctx, id, w.opts.Owner, time.Now().Add(w.opts.Lease)); err != nil && ctx.Err() == nil {
					w.opts.Logger.Warn("renew notification lease", "notification", id, "err", err)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// send renders and sends n, and decides what to do next.
func (w *Worker) send(ctx context.Context, ch *Channel, group []Notification) Attempt {
	n := group[0]
	events := make([]Event, len(group))
	for i, g := range group {
		events[i] = g.Event
	}
	m, err := ch.Templates.RenderGroup(events)
	if err != nil {
		return Attempt{Status: StatusFailed, Error: err.Error()}
	}
	m.ID, m.Channel = n.ID, n.Channel

	unlock := w.pace(ctx, ch)
	defer unlock()
	if ctx.Err() != nil {
		return Attempt{Status: StatusPending}
	}
	sctx, cancel := context.WithTimeout(ctx, w.opts.SendTimeout)
	started := time.Now()
	err = ch.Receiver.Send(sctx, m)
	cancel()
	w.metrics.request.WithLabelValues(ch.Name).Observe(time.Since(started).Seconds())
	w.sent(ch)
	if err == nil {
		return Attempt{Status: StatusSent}
	}
	se := Classify(err)
	now := time.Now()
	a := Attempt{Status: StatusPending, Error: se.Error(), RateLimited: se.RateLimited()}
	switch {
	case se.Permanent:
		a.Status = StatusFailed
	case now.Sub(n.CreatedAt) >= w.opts.MaxAge:
		a.Status = StatusFailed
		a.Error = fmt.Sprintf("gave up after %s: %s", w.opts.MaxAge, a.Error)
	case !a.RateLimited && n.Attempts+1 >= w.opts.MaxAttempts:
		a.Status = StatusFailed
		a.Error = fmt.Sprintf("gave up after %d attempts: %s", n.Attempts+1, a.Error)
	case se.RetryAfter > 0:
		a.Next = now.Add(se.RetryAfter)
	case a.RateLimited:
		a.Next = now.Add(w.opts.Backoff)
	default:
		a.Next = now.Add(w.backoff(n.Attempts))
	}
	if a.RateLimited {
		w.metrics.result(ch.Name, "rate_limited")
	} else if a.Status == StatusPending {
		w.metrics.result(ch.Name, "retry")
	}
	return a
}

// backoff is the wait after the attempts-th failure: exponential, capped, with ±20% jitter so
// channels that failed together do not retry together.
func (w *Worker) backoff(attempts int) time.Duration {
	d := float64(w.opts.Backoff) * math.Pow(2, float64(attempts))
	d = min(d, float64(w.opts.MaxBackoff))
	return time.Duration(d * (0.8 + 0.4*mrand.Float64()))
}

// pace holds the chat's lock and waits out its minimum interval since the last message. The
// returned function releases the lock.
func (w *Worker) pace(ctx context.Context, ch *Channel) func() {
	w.mu.Lock()
	l := w.chatLock[ch.ChatKey]
	if l == nil {
		l = &sync.Mutex{}
		w.chatLock[ch.ChatKey] = l
	}
	w.mu.Unlock()
	l.Lock()
	if ch.MinInterval > 0 {
		w.mu.Lock()
		last := w.lastSent[ch.ChatKey]
		w.mu.Unlock()
		if wait := time.Until(last.Add(ch.MinInterval)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
	return l.Unlock
}

func (w *Worker) sent(ch *Channel) {
	w.mu.Lock()
	w.lastSent[ch.ChatKey] = time.Now()
	w.mu.Unlock()
}

// ErrUnknownChannel reports a channel name that is not configured.
var ErrUnknownChannel = errors.New("unknown channel")

type workerMetrics struct {
	total   *prometheus.CounterVec
	depth   prometheus.Gauge
	latency *prometheus.HistogramVec
	request *prometheus.HistogramVec
}

func newWorkerMetrics(reg prometheus.Registerer) *workerMetrics {
	m := &workerMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_notifications_total",
			Help: "Notification delivery attempts by channel and result: sent, retry, rate_limited or failed (given up).",
		}, []string{"channel", "result"}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_notification_outbox_depth",
			Help: "Notifications in the outbox not yet sent or failed.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_notification_delivery_seconds",
			Help:    "Time from the event to the service accepting its message, retries included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"channel"}),
		request: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_notification_request_seconds",
			Help:    "Duration of one HTTP request to a chat service.",
			Buckets: prometheus.DefBuckets,
		}, []string{"channel"}),
	}
	if reg != nil {
		reg.MustRegister(m.total, m.depth, m.latency, m.request)
	}
	return m
}

func (m *workerMetrics) init(channel string) {
	for _, r := range []string{"sent", "retry", "rate_limited", "failed"} {
		m.total.WithLabelValues(channel, r)
	}
}

func (m *workerMetrics) result(channel, result string) {
	m.total.WithLabelValues(channel, result).Inc()
}
