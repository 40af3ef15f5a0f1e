package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/delivery/source"
)

// gitops is the GitOps engine as the process runs it: a controller manager with the
// Application reconciler.
type gitops struct {
	mgr         ctrl.Manager
	mirrors     *source.Mirrors
	installCRDs bool
	log         *slog.Logger
}

func newDelivery(rc *rest.Config, cfg config.Config, log *slog.Logger, reg prometheus.Registerer, releases delivery.Releases) (*gitops, error) {
	mgr, err := delivery.NewManager(rc, delivery.ManagerOptions{
		LeaderElection:          cfg.Delivery.LeaderElection,
		LeaderElectionNamespace: cfg.Delivery.LeaderElectionNamespace,
		Logger:                  logr.FromSlogHandler(log.With("component", "delivery").Handler()),
	})
	if err != nil {
		return nil, err
	}
	mirrors := source.NewMirrors(filepath.Join(cfg.DataDir, "git"),
		source.Options{Logger: log.With("component", "git"), Registerer: reg})
	rec := delivery.NewReconciler(mgr.GetClient(), mgr.GetRESTMapper(), mirrors, releases,
		mgr.GetEventRecorder("ferry"), delivery.Options{Concurrency: cfg.Delivery.Concurrency,
			Logger: log.With("component", "delivery"), Registerer: reg})
	if err := rec.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	return &gitops{mgr: mgr, mirrors: mirrors, installCRDs: cfg.Delivery.InstallCRDs, log: log}, nil
}

// run installs the CRDs if asked to, then reconciles until ctx ends.
func (d *gitops) run(ctx context.Context) error {
	if d.installCRDs {
		ictx, cancel := context.WithTimeout(ctx, time.Minute)
		err := delivery.InstallCRDs(ictx, d.mgr.GetClient(), d.mgr.GetRESTMapper())
		cancel()
		if err != nil {
			// Least-privilege installs ship the CRDs separately and may not create them.
			d.log.Warn("could not install CRDs; expecting them installed already", "err", err)
		}
	}
	err := d.mgr.Start(ctx)
	// The manager has stopped every reconcile; end any git command still running.
	return errors.Join(err, d.mirrors.Close())
}
