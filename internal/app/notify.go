package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/channel"
	"github.com/ferrycd/ferry/internal/store"
)

// newNotifier builds the configured channels, the router over the subscriptions, and the
// worker that delivers the outbox. It returns nil when no channel is configured. rc, when
// set, reads the Kubernetes Secrets that channels reference.
func newNotifier(rc *rest.Config, cfg config.Config, log *slog.Logger, reg prometheus.Registerer, db *store.DB) (*notify.Hub, *notify.Worker, error) {
	if len(cfg.Notify.Channels) == 0 {
		return nil, nil, nil
	}
	opts := channel.Options{Namespace: cfg.Inject.Namespace}
	if rc != nil {
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return nil, nil, fmt.Errorf("notify: kubernetes client: %w", err)
		}
		opts.Secrets = func(ctx context.Context, namespace, name string) (map[string][]byte, error) {
			s, err := cs.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return s.Data, nil
		}
	}
	channels, err := channel.Build(cfg.Notify.Channels, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: %w", err)
	}
	router, err := notify.NewRouter(cfg.Notify.ChannelNames(), cfg.Notify.Subscriptions)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: %w", err)
	}
	worker := notify.NewWorker(db, channels, notify.WorkerOptions{
		Logger: log.With("component", "notify"), Registerer: reg,
	})
	return notify.NewHub(router, worker, db, channels, cfg.Notify.PanelURL), worker, nil
}

// notificationsAPI is what the HTTP API serves about notifications: the hub, or without
// channels, the outbox alone (it may hold deliveries from when channels were configured).
func notificationsAPI(hub *notify.Hub, db *store.DB, cfg config.Config) *notify.Hub {
	if hub != nil {
		return hub
	}
	router, _ := notify.NewRouter(nil, nil)
	return notify.NewHub(router, nil, db, nil, cfg.Notify.PanelURL)
}
