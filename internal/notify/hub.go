package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Store is what the hub needs from Ferry's store.
type Store interface {
	EnqueueNotifications(ctx context.Context, notes []Notification) ([]int64, error)
	GetNotification(ctx context.Context, id int64) (Notification, error)
	FindNotifications(ctx context.Context, f Filter) (Page, error)
}

// ChannelInfo describes a configured channel without any of its secrets.
type ChannelInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Hub is the notifier as the rest of Ferry sees it: producers route their events through it
// into their own transactions and kick it; the API lists channels and deliveries and sends
// test messages.
type Hub struct {
	router   *Router
	worker   *Worker
	store    Store
	channels []ChannelInfo
	panelURL string
}

// NewHub returns a hub over the router and the worker that delivers the store's outbox; a
// nil worker makes a hub that only reads the outbox (no channels are configured). panelURL is the panel's base address for links; empty leaves messages without links.
func NewHub(router *Router, worker *Worker, store Store, channels []*Channel, panelURL string) *Hub {
	h := &Hub{router: router, worker: worker, store: store, panelURL: strings.TrimSuffix(panelURL, "/")}
	for _, c := range channels {
		h.channels = append(h.channels, ChannelInfo{Name: c.Name, Type: c.Type})
	}
	return h
}

// Route returns the notifications e causes; see Router.Route.
func (h *Hub) Route(e Event, app []AppSubscription) ([]Notification, []string) {
	return h.router.Route(e, app)
}

// Kick wakes the worker after notifications were stored.
func (h *Hub) Kick() {
	if h.worker != nil {
		h.worker.Kick()
	}
}

// EventURL is the panel page of a release, or "" when no panel address is configured.
func (h *Hub) EventURL(releaseID int64) string {
	if h.panelURL == "" || releaseID <= 0 {
		return ""
	}
	return h.panelURL + "/releases/" + strconv.FormatInt(releaseID, 10)
}

// Channels lists the configured channels.
func (h *Hub) Channels() []ChannelInfo { return h.channels }

// Find returns a page of the outbox's notifications.
func (h *Hub) Find(ctx context.Context, f Filter) (Page, error) {
	return h.store.FindNotifications(ctx, f)
}

// Get returns one notification.
func (h *Hub) Get(ctx context.Context, id int64) (Notification, error) {
	return h.store.GetNotification(ctx, id)
}

// Test queues a test message for channel through the outbox, like any other message, and
// waits until it is sent or has failed, or until ctx ends; it returns the notification as it
// then is.
func (h *Hub) Test(ctx context.Context, channel, requester string) (Notification, error) {
	if !h.router.Known(channel) {
		return Notification{}, fmt.Errorf("%w: %q", ErrUnknownChannel, channel)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	key := "test/" + hex.EncodeToString(b)
	summary := "Ferry can post to this channel."
	if requester != "" {
		summary += " Requested by " + requester + "."
	}
	e := Event{Type: EventTest, Time: time.Now().UTC(), Summary: summary, URL: h.panelURL}
	ids, err := h.store.EnqueueNotifications(ctx, []Notification{{Channel: channel, Key: key, Event: e}})
	if err != nil {
		return Notification{}, err
	}
	if len(ids) != 1 {
		return Notification{}, fmt.Errorf("test message to %s was not queued", channel)
	}
	h.Kick()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// Read with a context of its own so that a caller's deadline still gets the last state.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		n, err := h.store.GetNotification(rctx, ids[0])
		cancel()
		if err != nil || n.Status != StatusPending || ctx.Err() != nil {
			return n, err
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}
