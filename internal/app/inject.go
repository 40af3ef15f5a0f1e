package app

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/secrets/inject"
)

// newInjector builds the admission webhook that starts Pods with Vault references through
// ferry exec, with the Vault defaults of cfg.
func newInjector(rc *rest.Config, cfg config.Config, log *slog.Logger) (*inject.Server, error) {
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("inject: kubernetes client: %w", err)
	}
	ic := inject.Config{
		Image:        cfg.Inject.Image,
		VaultAddress: cfg.Vault.Address,
		VaultRole:    cfg.Vault.Role,
	}
	// Injected Pods always log in with their own service account.
	if cfg.Vault.AuthMethod == "kubernetes" {
		ic.VaultAuthPath = cfg.Vault.AuthPath
	}
	if cfg.Vault.CACert != "" {
		pem, err := os.ReadFile(cfg.Vault.CACert)
		if err != nil {
			return nil, fmt.Errorf("inject: vault.ca_cert: %w", err)
		}
		ic.VaultCACert = string(pem)
	}
	// The certificate names the Service; and the listen address too when it is an IP, so an
	// API server can also reach the webhook by URL (as a cluster-external Ferry or the tests do).
	var certs inject.CertSettings
	if host, _, err := net.SplitHostPort(cfg.Inject.Listen); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			certs.IPAddresses = []net.IP{ip}
		}
	}
	return inject.New(inject.Options{
		Addr:              cfg.Inject.Listen,
		Cert:              certs,
		Config:            ic,
		Namespace:         cfg.Inject.Namespace,
		ServiceName:       cfg.Inject.ServiceName,
		WebhookConfigName: cfg.Inject.WebhookName,
		Client:            cs,
		Logger:            log.With("component", "inject"),
	})
}
