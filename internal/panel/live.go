package panel

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Topics of live updates: a page that shows one of these lists subscribes to it.
const (
	TopicApps   = "apps"
	TopicAlerts = "alerts"
	TopicIssues = "issues"
)

// Broker tells the open pages, over server-sent events, that a list they show has changed;
// the page then fetches its live part again. Changes are coalesced per page and sent at
// most every throttle, so a burst of 5,000 alerts a second costs a page two reloads a
// second, not 5,000.
type Broker struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed chan struct{}
	once   sync.Once
	// throttle is the least time between two messages to one page.
	throttle time.Duration
	// keepalive is how often an idle stream gets a comment, so proxies keep it open.
	keepalive time.Duration
}

type subscriber struct {
	topics  map[string]bool
	mu      sync.Mutex
	pending map[string]bool
	wake    chan struct{}
}

// NewBroker returns a broker with no pages yet.
func NewBroker() *Broker {
	return &Broker{subs: map[*subscriber]struct{}{}, closed: make(chan struct{}),
		throttle: 500 * time.Millisecond, keepalive: 25 * time.Second}
}

// Publish tells the pages that show topic's list that it changed. It never blocks.
func (b *Broker) Publish(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if !s.topics[topic] {
			continue
		}
		s.mu.Lock()
		s.pending[topic] = true
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Close ends every stream, for the server's shutdown, which otherwise waits for them.
func (b *Broker) Close() { b.once.Do(func() { close(b.closed) }) }

// serve is GET /events?topic=apps&topic=alerts: an event stream with one "change" event,
// whose data names the topics, per burst of changes to the subscribed lists.
func (b *Broker) serve(w http.ResponseWriter, r *http.Request) error {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("%w: streaming unsupported", errBadRequest)
	}
	s := &subscriber{topics: map[string]bool{}, pending: map[string]bool{}, wake: make(chan struct{}, 1)}
	for _, t := range r.URL.Query()["topic"] {
		switch t {
		case TopicApps, TopicAlerts, TopicIssues:
			s.topics[t] = true
		default:
			return fmt.Errorf("%w: unknown topic %q", errBadRequest, t)
		}
	}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	// retry tells the browser how long to wait before reconnecting after a drop.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return nil
	}
	flusher.Flush()
	keepalive := time.NewTicker(b.keepalive)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-b.closed:
			return nil
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return nil
			}
			flusher.Flush()
		case <-s.wake:
			s.mu.Lock()
			topics := make([]string, 0, len(s.pending))
			for t := range s.pending {
				topics = append(topics, t)
			}
			clear(s.pending)
			s.mu.Unlock()
			if _, err := fmt.Fprintf(w, "event: change\ndata: %s\n\n", strings.Join(topics, " ")); err != nil {
				return nil
			}
			flusher.Flush()
			select {
			case <-r.Context().Done():
				return nil
			case <-b.closed:
				return nil
			case <-time.After(b.throttle):
			}
		}
	}
}
