package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/config/crd"
)

// ManagerOptions configures the controller manager that runs the Reconciler.
type ManagerOptions struct {
	// LeaderElection lets only one of several replicas reconcile.
	LeaderElection bool
	// LeaderElectionNamespace holds the lease; required with LeaderElection outside a cluster.
	LeaderElectionNamespace string
	// Namespaces limits the Applications watched to these namespaces; empty means all.
	Namespaces []string
	Logger     logr.Logger
}

// Scheme knows the kinds the delivery engine reads as typed objects.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NewManager returns a controller manager for cfg. Its metrics and probes are served by
// ferry's own HTTP server, not by the manager. Secrets are read live, never cached, so Ferry
// holds no cluster-wide copy of them.
func NewManager(cfg *rest.Config, opts ManagerOptions) (ctrl.Manager, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	var cacheOpts cache.Options
	if len(opts.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range opts.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		// client-go's default of 5 requests/s would cap delivery at about one app a second;
		// rely on the API server's priority and fairness instead, as controller-runtime does.
		cfg.QPS = -1
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Cache:                   cacheOpts,
		Scheme:                  scheme,
		Logger:                  opts.Logger,
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        "ferry-delivery.ferry.dev",
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		Client: client.Options{
			Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.Namespace{}}},
		},
		GracefulShutdownTimeout: new(10 * time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("controller manager: %w", err)
	}
	return mgr, nil
}

// InstallCRDs server-side applies Ferry's CustomResourceDefinitions and waits until the API
// server serves them.
func InstallCRDs(ctx context.Context, c client.Client, mapper apimeta.RESTMapper) error {
	crds, err := crd.All()
	if err != nil {
		return err
	}
	m := newResourceManager(c, mapper)
	opts := ssa.DefaultApplyOptions()
	opts.WaitInterval = 200 * time.Millisecond
	if _, err := m.ApplyAllStaged(ctx, crds, opts); err != nil {
		return fmt.Errorf("install crds: %w", err)
	}
	return nil
}
