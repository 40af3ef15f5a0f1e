package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/incident/alerta"
	"github.com/ferrycd/ferry/internal/incident/alertmanager"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/web"
)

// newIncidents builds the incident hub over the store, telling the notifier's channels when
// there are any, the options of its HTTP endpoints, and its housekeeping worker.
//
// changed is called after every stored change of an alert, for the panel's live board.
func newIncidents(cfg config.Config, db *store.DB, hub *notify.Hub, keys web.KeyAuthenticator, changed func(),
	log *slog.Logger) (web.IncidentOptions, worker, error) {
	identity, err := incident.NewIdentity(cfg.Incidents.DedupKeys)
	if len(cfg.Incidents.DedupKeys) == 0 {
		identity, err = incident.DefaultIdentity(), nil
	}
	if err != nil {
		return web.IncidentOptions{}, worker{}, err
	}
	severity, _ := incident.ParseSeverity(cfg.Incidents.DefaultSeverity, incident.SeverityWarning)
	bc := &blackoutCache{db: db}
	if err := bc.refresh(context.Background()); err != nil {
		return web.IncidentOptions{}, worker{}, err
	}
	opts := incident.HubOptions{Rules: incident.Rules{Identity: identity, Blackout: bc.covers},
		DefaultEnvironment: cfg.Incidents.DefaultEnvironment, Changed: changed}
	if hub != nil {
		opts.Route = func(e notify.Event) []notify.Notification {
			notes, _ := hub.Route(e, nil)
			return notes
		}
		opts.Kick = hub.Kick
		if base := cfg.Notify.PanelURL; base != "" {
			opts.AlertURL = func(id string) string { return base + "/alerts/" + id }
		}
	}
	am := cfg.Incidents.Alertmanager
	mapping := alertmanager.Mapping{
		ResourceLabels: am.ResourceLabels, EventLabel: am.EventLabel, EnvironmentLabel: am.EnvironmentLabel,
		SeverityLabel: am.SeverityLabel, GroupLabel: am.GroupLabel, ServiceLabel: am.ServiceLabel,
		DefaultEnvironment: cfg.Incidents.DefaultEnvironment, DefaultSeverity: severity,
	}
	ao := alerta.DefaultOptions()
	ao.DefaultEnvironment, ao.DefaultSeverity = cfg.Incidents.DefaultEnvironment, severity
	ih := incident.NewHub(db, opts)
	hlog := log.With("component", "incidents")
	housekeeping := worker{"incidents", func(ctx context.Context) error {
		go bc.run(ctx, 30*time.Second, hlog)
		return ih.RunHousekeeping(ctx, db, cfg.Incidents.HousekeepingInterval, cfg.Incidents.Retention, hlog)
	}}
	return web.IncidentOptions{Hub: ih, Keys: keys, Mapping: mapping, Alerta: ao, Heartbeats: db, Blackouts: bc},
		housekeeping, nil
}

// blackoutCache holds the blackouts not yet over, so that receiving an alert asks memory,
// not the store, whether a blackout covers it. Creating or deleting one through it refreshes
// it at once; a periodic refresh drops those that ended and sees other replicas' changes.
type blackoutCache struct {
	db *store.DB
	mu sync.RWMutex
	// current are the blackouts active or pending; Covers checks each one's window.
	current []incident.Blackout
}

func (c *blackoutCache) refresh(ctx context.Context) error {
	all, err := c.db.ListBlackouts(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	current := all[:0]
	for _, b := range all {
		if b.EndTime.After(now) {
			current = append(current, b)
		}
	}
	c.mu.Lock()
	c.current = current
	c.mu.Unlock()
	return nil
}

// run refreshes the cache every interval until ctx ends.
func (c *blackoutCache) run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.refresh(ctx); err != nil && ctx.Err() == nil {
				log.Warn("refresh blackouts", "err", err)
			}
		}
	}
}

func (c *blackoutCache) covers(a incident.Alert) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return incident.AnyCovers(c.current, a, time.Now())
}

// CreateBlackout stores b and refreshes the cache.
func (c *blackoutCache) CreateBlackout(ctx context.Context, b incident.Blackout) (incident.Blackout, error) {
	b, err := c.db.CreateBlackout(ctx, b)
	if err == nil {
		err = c.refresh(ctx)
	}
	return b, err
}

// DeleteBlackout removes one and refreshes the cache.
func (c *blackoutCache) DeleteBlackout(ctx context.Context, id string) error {
	err := c.db.DeleteBlackout(ctx, id)
	if err == nil {
		err = c.refresh(ctx)
	}
	return err
}

// GetBlackout returns one blackout.
func (c *blackoutCache) GetBlackout(ctx context.Context, id string) (incident.Blackout, error) {
	return c.db.GetBlackout(ctx, id)
}

// ListBlackouts returns every blackout.
func (c *blackoutCache) ListBlackouts(ctx context.Context) ([]incident.Blackout, error) {
	return c.db.ListBlackouts(ctx)
}
