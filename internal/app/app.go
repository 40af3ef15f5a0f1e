// Package app wires Ferry's subsystems into one process: New builds everything from a
// configuration, Run serves until its context ends, then everything is stopped in reverse order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/buildinfo"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/panel"
	"github.com/ferrycd/ferry/internal/store"
	"github.com/ferrycd/ferry/internal/web"
)

// Options are what New needs to build the process.
type Options struct {
	Config config.Config
	Logger *slog.Logger
	// Registry collects every metric of the process. New creates one when nil.
	Registry *prometheus.Registry
}

// App is a built, not yet serving, Ferry process.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	ln       net.Listener
	srv      *http.Server
	store    *store.DB
	delivery *gitops
	// workers run beside the HTTP server for the life of the process: delivery, the
	// injection webhook. One ending early stops the process.
	workers  []worker
	cleanups []func() error
}

// worker is a long-running part of the process.
type worker struct {
	name string
	run  func(ctx context.Context) error
}

// New opens the store (migrating it), connects to Kubernetes when delivery is on, and binds the
// listen address. On error, whatever was already opened is closed again.
func New(ctx context.Context, opts Options) (_ *App, err error) {
	a := &App{cfg: opts.Config, log: opts.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			_ = a.cleanup()
		}
	}()

	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := registerProcessMetrics(reg); err != nil {
		return nil, err
	}

	// The data directory is Ferry's own; the default SQLite store lives in it.
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	db, err := store.Open(ctx, a.cfg.Store, store.Options{})
	if err != nil {
		return nil, err
	}
	a.store = db
	a.onStop(db.Close)
	ready := []web.Check{{Name: "store", Fn: db.Ready}}

	gatherer := prometheus.Gatherers{reg}
	var (
		gitWebhook http.Handler
		rc         *rest.Config
	)
	if a.cfg.Delivery.Enabled || a.cfg.Inject.Enabled {
		var check func(context.Context) error
		if rc, check, err = kubernetesClient(a.cfg.Delivery.Kubeconfig); err != nil {
			return nil, err
		}
		ready = append(ready, web.Check{Name: "kubernetes", Fn: check})
	}
	hub, notifier, err := newNotifier(rc, a.cfg, a.log, reg, db)
	if err != nil {
		return nil, err
	}
	if notifier != nil {
		a.workers = append(a.workers, worker{"notify", notifier.Run})
	}
	if a.cfg.Delivery.Enabled {
		if a.delivery, err = newDelivery(rc, a.cfg, a.log, reg, db, hub); err != nil {
			return nil, err
		}
		gatherer = append(gatherer, withoutRuntimeMetrics(ctrlmetrics.Registry))
		gitWebhook = a.delivery.webhook
		a.workers = append(a.workers, worker{"delivery", a.delivery.run})
	}
	if a.cfg.Inject.Enabled {
		inj, err := newInjector(rc, a.cfg, a.log)
		if err != nil {
			return nil, err
		}
		a.workers = append(a.workers, worker{"inject", inj.Run})
		ready = append(ready, web.Check{Name: "inject", Fn: func(context.Context) error {
			if !inj.Ready() {
				return errors.New("no webhook certificate yet")
			}
			return nil
		}})
	}

	keys := &apikey.Cache{Auth: db}
	live := panel.NewBroker()
	incidents, housekeeping, err := newIncidents(a.cfg, db, hub, keys, func() { live.Publish(panel.TopicAlerts) }, a.log)
	if err != nil {
		return nil, err
	}
	errs, retention := newErrors(a.cfg, db, hub, keys, func() { live.Publish(panel.TopicIssues) }, a.log)
	sessions, purge, err := newSessions(ctx, a.cfg, db, a.log)
	if err != nil {
		return nil, err
	}
	a.workers = append(a.workers, housekeeping, retention, purge)
	notifications := notificationsAPI(hub, db, a.cfg)
	popts := panel.Options{Logger: a.log.With("component", "panel"), Auth: sessions, Releases: db, Live: live,
		Incidents: panel.IncidentOptions{Hub: incidents.Hub, Heartbeats: incidents.Heartbeats, Blackouts: incidents.Blackouts},
		Errors:    panel.ErrorOptions{Hub: errs.Hub},
		Settings:  panel.SettingsOptions{Notify: notifications, Keys: db, DSNBase: errs.DSNBase}}
	if a.delivery != nil {
		popts.Apps = clusterApps{engine: a.delivery.engine}
		if err := watchApps(a.delivery.engine, live); err != nil {
			return nil, err
		}
	}
	ui, err := panel.New(popts)
	if err != nil {
		return nil, err
	}
	a.ln, err = net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	a.onStop(func() error {
		if err := a.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	a.srv = &http.Server{
		Handler: web.New(web.Options{
			Logger:     a.log,
			Registry:   reg,
			Gatherer:   gatherer,
			GitWebhook: gitWebhook,
			Ready:      ready,
			Releases:   db,
			Notify:     notifications,
			Incidents:  incidents,
			Errors:     errs,
			Keys:       keys,
			Sessions:   sessions,
			Panel:      ui,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	// Open event streams of the panel would hold the shutdown until its timeout.
	a.srv.RegisterOnShutdown(live.Close)
	return a, nil
}

// Addr is the address the server listens on, with the port resolved when the configuration
// asked for port 0.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Store is the process's store.
func (a *App) Store() *store.DB { return a.store }

// Run serves until ctx is done, then stops accepting requests, waits up to the configured
// shutdown timeout for requests in flight, and closes everything New opened.
func (a *App) Run(ctx context.Context) error {
	info := buildinfo.Get()
	a.log.Info("ferry serving", "addr", a.Addr(), "store", store.RedactURL(a.cfg.Store),
		"delivery", a.cfg.Delivery.Enabled, "version", info.Version, "commit", info.Commit)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type ended struct {
		name string
		err  error
	}
	workerDone := make(chan ended, len(a.workers))
	for _, w := range a.workers {
		go func() { workerDone <- ended{w.name, w.run(ctx)} }()
	}
	running := len(a.workers)

	serveErr := make(chan error, 1)
	go func() { serveErr <- a.srv.Serve(a.ln) }()

	var err error
	select {
	case serr := <-serveErr:
		err = fmt.Errorf("serve: %w", serr)
		cancel()
	case w := <-workerDone:
		running--
		if ctx.Err() != nil {
			// The process is stopping and this worker saw it first: not a failure.
			a.log.Info("ferry stopping", "timeout", a.cfg.ShutdownTimeout)
			err = errors.Join(w.err, a.shutdown(ctx, serveErr))
			break
		}
		// Workers end only with the process; ending early is a failure.
		err = errors.Join(fmt.Errorf("%s stopped", w.name), w.err)
		cancel()
		err = errors.Join(err, a.shutdown(ctx, serveErr))
	case <-ctx.Done():
		a.log.Info("ferry stopping", "timeout", a.cfg.ShutdownTimeout)
		// ctx is done, so the workers are stopping too, at the same time as the HTTP server.
		err = a.shutdown(ctx, serveErr)
	}
	for ; running > 0; running-- {
		if w := <-workerDone; w.err != nil {
			err = errors.Join(err, fmt.Errorf("%s: %w", w.name, w.err))
		}
	}
	return errors.Join(err, a.cleanup())
}

// shutdown stops the HTTP server, letting requests in flight finish within the shutdown timeout.
func (a *App) shutdown(ctx context.Context, serveErr <-chan error) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	var err error
	if serr := a.srv.Shutdown(sctx); serr != nil {
		err = fmt.Errorf("shutdown: %w", serr)
		_ = a.srv.Close()
	}
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve: %w", serr))
	}
	return err
}

// onStop registers f to run when the app stops; cleanups run last-in, first-out.
func (a *App) onStop(f func() error) { a.cleanups = append(a.cleanups, f) }

func (a *App) cleanup() error {
	var errs []error
	for i := len(a.cleanups) - 1; i >= 0; i-- {
		errs = append(errs, a.cleanups[i]())
	}
	a.cleanups = nil
	return errors.Join(errs...)
}

// withoutRuntimeMetrics drops the Go and process metrics from g: controller-runtime's registry
// has its own copies of the collectors Ferry's registry already serves, and two copies of a
// series make the whole scrape fail.
func withoutRuntimeMetrics(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		out := mfs[:0]
		for _, mf := range mfs {
			if name := mf.GetName(); !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
				out = append(out, mf)
			}
		}
		return out, err
	})
}

func registerProcessMetrics(reg prometheus.Registerer) error {
	info := buildinfo.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ferry_build_info",
		Help: "A metric with constant value 1, labelled by the version, commit and Go version Ferry was built with.",
		ConstLabels: prometheus.Labels{
			"version": info.Version, "commit": info.Commit, "goversion": info.GoVersion,
		},
	})
	build.Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// kubernetesClient loads the Kubernetes client configuration and returns it with a readiness
// check that asks the API server for its version. Only a configuration that cannot be loaded
// is an error here; an API server that is down makes the process unready, not dead.
func kubernetesClient(kubeconfig string) (*rest.Config, func(context.Context) error, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: kubernetes client config: %w (set --kubeconfig, or --delivery=false to run without Kubernetes)", err)
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "ferry/" + buildinfo.Get().Version
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: kubernetes client: %w", err)
	}
	return rc, func(ctx context.Context) error {
		return cs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error()
	}, nil
}
