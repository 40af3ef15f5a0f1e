package app

import (
	"context"
	"log/slog"

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
func newIncidents(cfg config.Config, db *store.DB, hub *notify.Hub, log *slog.Logger) (web.IncidentOptions, worker, error) {
	identity, err := incident.NewIdentity(cfg.Incidents.DedupKeys)
	if len(cfg.Incidents.DedupKeys) == 0 {
		identity, err = incident.DefaultIdentity(), nil
	}
	if err != nil {
		return web.IncidentOptions{}, worker{}, err
	}
	severity, _ := incident.ParseSeverity(cfg.Incidents.DefaultSeverity, incident.SeverityWarning)
	opts := incident.HubOptions{Rules: incident.Rules{Identity: identity}}
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
	housekeeping := worker{"incidents", func(ctx context.Context) error {
		return ih.RunHousekeeping(ctx, db, cfg.Incidents.HousekeepingInterval, cfg.Incidents.Retention,
			log.With("component", "incidents"))
	}}
	return web.IncidentOptions{Hub: ih, Keys: db, Mapping: mapping, Alerta: ao}, housekeeping, nil
}
