package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/delivery/webhook"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/secrets/vault"
	"github.com/ferrycd/ferry/internal/secrets/vaultapps"
)

// gitops is the delivery engine as ferry server runs it, with the push webhook that feeds it.
type gitops struct {
	engine      *delivery.Engine
	webhook     http.Handler // POST /api/v1/webhooks/git
	installCRDs bool
	log         *slog.Logger
}

func newDelivery(rc *rest.Config, cfg config.Config, log *slog.Logger, reg prometheus.Registerer, releases delivery.Releases,
	hub *notify.Hub) (*gitops, error) {
	var notifier delivery.Notifier
	if hub != nil {
		notifier = hub
	}
	var secrets delivery.SecretSource
	if cfg.Vault.Address != "" {
		vs, err := vaultApps(rc, cfg)
		if err != nil {
			return nil, err
		}
		secrets = vs
	}
	engine, err := delivery.NewEngine(rc, releases, delivery.EngineOptions{
		Manager: delivery.ManagerOptions{
			LeaderElection:          cfg.Delivery.LeaderElection,
			LeaderElectionNamespace: cfg.Delivery.LeaderElectionNamespace,
			Logger:                  delivery.KubeLogger(log.With("component", "delivery").Handler()),
		},
		Reconciler: delivery.Options{Concurrency: cfg.Delivery.Concurrency, Logger: log.With("component", "delivery"),
			Secrets: secrets, SecretCheckInterval: cfg.Vault.CheckInterval, Notifier: notifier},
		GitDir:     filepath.Join(cfg.DataDir, "git"),
		Logger:     log.With("component", "git"),
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	g := &gitops{engine: engine, installCRDs: cfg.Delivery.InstallCRDs, log: log}
	g.webhook = webhook.Handler(webhook.Secrets{
		GitHub: cfg.Webhooks.GitHubSecret,
		GitLab: cfg.Webhooks.GitLabToken,
		Gitea:  cfg.Webhooks.GiteaSecret,
	}, func(ctx context.Context, p webhook.Push) (int, error) {
		return engine.Reconciler.Refresh(ctx, func(app *v1alpha1.Application) bool { return pushed(p, app) })
	}, log.With("component", "webhook"))
	return g, nil
}

// pushed reports whether push p may have moved the revision app tracks. A SHA never moves;
// an empty revision or HEAD tracks the default branch, which the payload does not name, so
// any branch push to the repository refreshes it (a spare ls-remote, never a missed deploy).
func pushed(p webhook.Push, app *v1alpha1.Application) bool {
	if p.Deleted || !p.Matches(app.Spec.Source.RepoURL) {
		return false
	}
	rev := strings.TrimPrefix(strings.TrimPrefix(app.Spec.Source.Revision, "refs/heads/"), "refs/tags/")
	switch {
	case rev == "" || rev == "HEAD":
		return p.Branch != ""
	case p.Branch != "":
		return rev == p.Branch
	default:
		return rev == p.Tag
	}
}

// run installs the CRDs if asked to, then reconciles until ctx ends.
func (d *gitops) run(ctx context.Context) error {
	if d.installCRDs {
		ictx, cancel := context.WithTimeout(ctx, time.Minute)
		mgr := d.engine.Manager
		err := delivery.InstallCRDs(ictx, mgr.GetClient(), mgr.GetRESTMapper())
		cancel()
		if err != nil {
			// Least-privilege installs ship the CRDs separately and may not create them.
			d.log.Warn("could not install CRDs; expecting them installed already", "err", err)
		}
	}
	return d.engine.Start(ctx)
}

// vaultApps reads Vault for delivery with each Application's identity, as cfg.Vault says.
func vaultApps(rc *rest.Config, cfg config.Config) (*vaultapps.Apps, error) {
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("vault: kubernetes client: %w", err)
	}
	vc := vault.Config{
		Address: cfg.Vault.Address,
		TLS:     vault.TLSConfig{CACert: cfg.Vault.CACert},
		Auth: vault.Auth{
			Method:       cfg.Vault.AuthMethod,
			MountPath:    cfg.Vault.AuthPath,
			Role:         cfg.Vault.Role,
			TokenFile:    cfg.Vault.TokenFile,
			RoleIDFile:   cfg.Vault.RoleIDFile,
			SecretIDFile: cfg.Vault.SecretIDFile,
		},
	}
	return vaultapps.New(vc, kube), nil
}
