package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/ferrycd/ferry/internal/delivery/source"
)

// treePruneInterval is how often unused git trees are removed, and how long a tree read by a
// reconcile is kept regardless.
const treePruneInterval = 10 * time.Minute

// EngineOptions configures an Engine.
type EngineOptions struct {
	Manager    ManagerOptions
	Reconciler Options
	// GitDir holds the git mirrors and exported trees.
	GitDir string
	// Logger and Registerer reach the git mirrors too.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Engine is the delivery controller as a process runs it: a controller manager, the git
// mirrors and the Application reconciler, wired once for ferry server and the tests alike.
type Engine struct {
	Manager    ctrl.Manager
	Reconciler *Reconciler
	mirrors    *source.Mirrors
}

// NewEngine builds an Engine for the cluster of cfg that records releases in releases.
func NewEngine(cfg *rest.Config, releases Releases, opts EngineOptions) (*Engine, error) {
	mgr, err := NewManager(cfg, opts.Manager)
	if err != nil {
		return nil, err
	}
	mirrors := source.NewMirrors(opts.GitDir, source.Options{Logger: opts.Logger, Registerer: opts.Registerer})
	ropts := opts.Reconciler
	if ropts.Logger == nil {
		ropts.Logger = opts.Logger
	}
	if len(ropts.Namespaces) == 0 {
		ropts.Namespaces = opts.Manager.Namespaces
	}
	if ropts.Registerer == nil {
		ropts.Registerer = opts.Registerer
	}
	rec := NewReconciler(mgr.GetClient(), mgr.GetRESTMapper(), mirrors, releases, mgr.GetEventRecorder("ferry"), ropts)
	if err := rec.SetupWithManager(mgr); err != nil {
		return nil, errors.Join(fmt.Errorf("delivery: %w", err), mirrors.Close())
	}
	log := ropts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Every commit fetched is exported to disk; without this, a busy repository fills it.
	err = mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		t := time.NewTicker(treePruneInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if n, err := rec.PruneTrees(ctx, treePruneInterval); err != nil {
					log.Warn("prune git trees", "error", err)
				} else if n > 0 {
					log.Debug("pruned git trees", "removed", n)
				}
			}
		}
	}))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("delivery: %w", err), mirrors.Close())
	}
	return &Engine{Manager: mgr, Reconciler: rec, mirrors: mirrors}, nil
}

// Start reconciles until ctx ends, then stops any git command still running.
func (e *Engine) Start(ctx context.Context) error {
	err := e.Manager.Start(ctx)
	return errors.Join(err, e.mirrors.Close())
}
