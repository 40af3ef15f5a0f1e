package incident

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

// Outcome is what receiving or changing one alert did.
type Outcome struct {
	Alert Alert
	Kind  Kind
	// Previous is the stored alert as it was before; nil for a new alert.
	Previous *Alert
	// Release is the release the alert is attached to, if any.
	Release *release.Release
}

// Effects are what a change to an alert causes besides itself, stored in its transaction:
// events on the timeline of the alert's release (the store sets their ReleaseID; none are
// written for an alert without a release) and notifications.
type Effects struct {
	Events        []release.Event
	Notifications []notify.Notification
}

// ReceiveOptions tune how the store receives an alert.
type ReceiveOptions struct {
	// Now is the receive time; zero means time.Now.
	Now time.Time
	// Link lists the Applications and environments a new alert may point at, best first: the
	// alert is attached to the latest succeeded release of the first pair that has one.
	Link func(a Alert) (applications, environments []string)
	// Effects returns what the outcome causes; nil causes nothing.
	Effects func(o Outcome) Effects
	// NewID returns the ID of a new alert.
	NewID func() string
	// Rules are the identity and the blackout check of Receive.
	Rules Rules
}

// List is one page of the alerts a query selects, with the counts Alerta returns beside it:
// how many match in all, by severity and by status.
type List struct {
	Alerts         []Alert
	Total          int
	SeverityCounts map[Severity]int
	StatusCounts   map[Status]int
}

// Store is what the incident hub needs from Ferry's store.
type Store interface {
	ReceiveAlert(ctx context.Context, in Alert, opts ReceiveOptions) (Outcome, error)
	UpdateAlert(ctx context.Context, id string, change func(Alert) (Alert, error), effects func(Outcome) Effects) (Alert, error)
	GetAlert(ctx context.Context, id string) (Alert, error)
	FindAlerts(ctx context.Context, q Query) (List, error)
	DeleteAlert(ctx context.Context, id string) error
}

// HubOptions are the incident hub's collaborators. The zero value stores alerts and tells
// no one.
type HubOptions struct {
	// Rules are the de-duplication identity and the blackout check.
	Rules Rules
	// Route returns the notifications of a change, one per subscribed channel; nil sends none.
	Route func(notify.Event) []notify.Notification
	// Kick wakes the notification worker after notifications were stored.
	Kick func()
	// Changed, when set, is called after every stored change, for the panel's live lists.
	// It must not block.
	Changed func()
	// AlertURL links an alert's page in the panel.
	AlertURL func(id string) string
	// DefaultEnvironment is the environment of heartbeat alerts whose sender names none.
	DefaultEnvironment string
}

// Hub receives alerts and operators' changes, and stores each with its timeline events and
// notifications in one transaction.
type Hub struct {
	store Store
	opts  HubOptions
}

// NewHub returns the incident hub over store.
func NewHub(store Store, opts HubOptions) *Hub { return &Hub{store: store, opts: opts} }

func (h *Hub) effects(o Outcome) Effects {
	return EffectsOf(o, h.opts.Route, h.opts.AlertURL)
}

func (h *Hub) kick(eff Effects) {
	if h.opts.Changed != nil {
		h.opts.Changed()
	}
	if len(eff.Notifications) > 0 && h.opts.Kick != nil {
		h.opts.Kick()
	}
}

// Receive de-duplicates, correlates or creates the alert a, attaches a new one to the
// release it points at, and records what it caused.
func (h *Hub) Receive(ctx context.Context, a Alert) (Outcome, error) {
	var eff Effects
	o, err := h.store.ReceiveAlert(ctx, a, ReceiveOptions{
		Link: LinkCandidates, NewID: uuid.NewString, Rules: h.opts.Rules,
		Effects: func(o Outcome) Effects {
			eff = h.effects(o)
			return eff
		},
	})
	if err == nil {
		h.kick(eff)
	}
	return o, err
}

// Action runs an operator's action (ack, shelve, close, ...) on an alert.
func (h *Hub) Action(ctx context.Context, id, action, text, user string, timeout int) (Alert, error) {
	return h.update(ctx, id, func(a Alert) (Alert, error) { return Apply(a, action, text, user, timeout, time.Now()) })
}

// SetStatus sets an alert's status, as Alerta's PUT /alert/{id}/status does.
func (h *Hub) SetStatus(ctx context.Context, id string, status Status, text, user string) (Alert, error) {
	return h.update(ctx, id, func(a Alert) (Alert, error) { return SetStatus(a, status, text, user, time.Now()) })
}

func (h *Hub) update(ctx context.Context, id string, change func(Alert) (Alert, error)) (Alert, error) {
	var eff Effects
	a, err := h.store.UpdateAlert(ctx, id, change, func(o Outcome) Effects {
		eff = h.effects(o)
		return eff
	})
	if err == nil {
		h.kick(eff)
	}
	return a, err
}

// Get returns one alert.
func (h *Hub) Get(ctx context.Context, id string) (Alert, error) { return h.store.GetAlert(ctx, id) }

// Find returns a page of alerts.
func (h *Hub) Find(ctx context.Context, q Query) (List, error) { return h.store.FindAlerts(ctx, q) }

// Delete removes an alert.
func (h *Hub) Delete(ctx context.Context, id string) error {
	err := h.store.DeleteAlert(ctx, id)
	if err == nil {
		h.kick(Effects{})
	}
	return err
}
