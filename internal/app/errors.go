package app

import (
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/web"
)

// retentionInterval is how often events past the retention are deleted.
const retentionInterval = 10 * time.Minute

// newErrors builds the error tracker over the store, telling the notifier's channels when
// there are any, the options of its HTTP endpoints, and its retention worker.
//
// changed is called after every stored event or issue change, for the panel's live lists.
func newErrors(cfg config.Config, db *store.DB, hub *notify.Hub, keys web.KeyAuthenticator, changed func(),
	log *slog.Logger) (web.ErrorOptions, worker) {
	c := cfg.Errors
	opts := errtrack.HubOptions{Spike: errtrack.Spike{Count: int64(c.SpikeCount), Window: c.SpikeWindow}, Changed: changed}
	if hub != nil {
		opts.Route = func(e notify.Event) []notify.Notification {
			notes, _ := hub.Route(e, nil)
			return notes
		}
		opts.Kick = hub.Kick
		if base := cfg.Notify.PanelURL; base != "" {
			opts.IssueURL = func(id int64) string { return base + "/issues/" + strconv.FormatInt(id, 10) }
		}
	}
	wo := web.ErrorOptions{Hub: errtrack.NewHub(db, opts), Gate: &errtrack.Gate{Store: db, DefaultRateLimit: c.RateLimit},
		Keys: keys}
	if c.DSNURL != "" {
		wo.DSNBase, _ = url.Parse(c.DSNURL) // validated with the configuration
	}
	elog := log.With("component", "errors")
	retention := worker{"errors", func(ctx context.Context) error {
		if c.Retention <= 0 {
			<-ctx.Done()
			return nil
		}
		t := time.NewTicker(retentionInterval)
		defer t.Stop()
		for {
			n, err := db.PurgeEvents(ctx, time.Now().Add(-c.Retention))
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				elog.Warn("delete old error events", "err", err)
			case n > 0:
				elog.Info("deleted old error events", "events", n, "retention", c.Retention)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}}
	return wo, retention
}
