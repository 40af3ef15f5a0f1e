package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Setting is one configuration value, reachable as one YAML key, one FERRY_* environment variable
// and one flag.
type Setting struct {
	// Key is the YAML key, dotted for nesting ("log.level").
	Key string
	// Flag is the flag name without dashes.
	Flag  string
	Usage string
	// field returns a pointer to the value in c: *string, *bool or *time.Duration.
	field func(c *Config) any
}

// Env is the environment variable that sets s: FERRY_ and the key in upper case.
func (s Setting) Env() string {
	return "FERRY_" + strings.ToUpper(strings.ReplaceAll(s.Key, ".", "_"))
}

func (s Setting) set(c *Config, v string) error {
	switch p := s.field(c).(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", v)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 10s", v)
		}
		*p = d
	default:
		return fmt.Errorf("setting %s has unsupported type %T", s.Key, p)
	}
	return nil
}

// Settings lists every setting of `ferry server`.
var Settings = []Setting{
	{Key: "listen", Flag: "listen", Usage: "address the HTTP server listens on",
		field: func(c *Config) any { return &c.Listen }},
	{Key: "data_dir", Flag: "data-dir", Usage: "directory for local state, such as the default SQLite store",
		field: func(c *Config) any { return &c.DataDir }},
	{Key: "store", Flag: "store", Usage: "store URL: sqlite:///PATH or postgres://USER:PASS@HOST/DB (default SQLite under --data-dir)",
		field: func(c *Config) any { return &c.Store }},
	{Key: "store_file", Flag: "store-file", Usage: "file holding the store URL, for URLs with a password",
		field: func(c *Config) any { return &c.StoreFile }},
	{Key: "shutdown_timeout", Flag: "shutdown-timeout", Usage: "how long a stopping server waits for requests in flight",
		field: func(c *Config) any { return &c.ShutdownTimeout }},
	{Key: "log.level", Flag: "log-level", Usage: "log level: debug, info, warn or error",
		field: func(c *Config) any { return &c.Log.Level }},
	{Key: "log.format", Flag: "log-format", Usage: "log format: text or json",
		field: func(c *Config) any { return &c.Log.Format }},
	{Key: "delivery.enabled", Flag: "delivery", Usage: "run the GitOps delivery subsystem (needs a Kubernetes cluster)",
		field: func(c *Config) any { return &c.Delivery.Enabled }},
	{Key: "delivery.kubeconfig", Flag: "kubeconfig", Usage: "kubeconfig file (default $KUBECONFIG, ~/.kube/config, then in-cluster)",
		field: func(c *Config) any { return &c.Delivery.Kubeconfig }},
	{Key: "delivery.concurrency", Flag: "delivery-concurrency", Usage: "how many Applications do a sync's work at once; a sync waiting for health holds no slot",
		field: func(c *Config) any { return &c.Delivery.Concurrency }},
	{Key: "delivery.install_crds", Flag: "install-crds", Usage: "apply Ferry's CustomResourceDefinitions at start",
		field: func(c *Config) any { return &c.Delivery.InstallCRDs }},
	{Key: "delivery.leader_election", Flag: "leader-election", Usage: "elect one replica to run delivery (for several replicas)",
		field: func(c *Config) any { return &c.Delivery.LeaderElection }},
	{Key: "webhooks.github_secret", Flag: "webhook-github-secret", Usage: "secret GitHub signs push webhooks with",
		field: func(c *Config) any { return &c.Webhooks.GitHubSecret }},
	{Key: "webhooks.github_secret_file", Flag: "webhook-github-secret-file", Usage: "file holding webhooks.github_secret",
		field: func(c *Config) any { return &c.Webhooks.GitHubSecretFile }},
	{Key: "webhooks.gitlab_token", Flag: "webhook-gitlab-token", Usage: "token GitLab sends with push webhooks",
		field: func(c *Config) any { return &c.Webhooks.GitLabToken }},
	{Key: "webhooks.gitlab_token_file", Flag: "webhook-gitlab-token-file", Usage: "file holding webhooks.gitlab_token",
		field: func(c *Config) any { return &c.Webhooks.GitLabTokenFile }},
	{Key: "webhooks.gitea_secret", Flag: "webhook-gitea-secret", Usage: "secret Gitea/Forgejo sign push webhooks with",
		field: func(c *Config) any { return &c.Webhooks.GiteaSecret }},
	{Key: "webhooks.gitea_secret_file", Flag: "webhook-gitea-secret-file", Usage: "file holding webhooks.gitea_secret",
		field: func(c *Config) any { return &c.Webhooks.GiteaSecretFile }},
	{Key: "delivery.leader_election_namespace", Flag: "leader-election-namespace", Usage: "namespace of the leader lease",
		field: func(c *Config) any { return &c.Delivery.LeaderElectionNamespace }},
	{Key: "vault.address", Flag: "vault-address", Usage: "Vault URL; empty turns Vault features off",
		field: func(c *Config) any { return &c.Vault.Address }},
	{Key: "vault.auth_method", Flag: "vault-auth-method", Usage: "how Ferry logs in to Vault: kubernetes, approle or token",
		field: func(c *Config) any { return &c.Vault.AuthMethod }},
	{Key: "vault.role", Flag: "vault-role", Usage: "Vault role for Kubernetes auth (also the default for injected pods)",
		field: func(c *Config) any { return &c.Vault.Role }},
	{Key: "vault.auth_path", Flag: "vault-auth-path", Usage: "mount path of the Vault auth method (default: its name)",
		field: func(c *Config) any { return &c.Vault.AuthPath }},
	{Key: "vault.ca_cert", Flag: "vault-ca-cert", Usage: "PEM file of the CA of Vault's certificate",
		field: func(c *Config) any { return &c.Vault.CACert }},
	{Key: "vault.token_file", Flag: "vault-token-file", Usage: "file holding a Vault token (token auth)",
		field: func(c *Config) any { return &c.Vault.TokenFile }},
	{Key: "vault.role_id_file", Flag: "vault-role-id-file", Usage: "file holding the AppRole role_id",
		field: func(c *Config) any { return &c.Vault.RoleIDFile }},
	{Key: "vault.secret_id_file", Flag: "vault-secret-id-file", Usage: "file holding the AppRole secret_id",
		field: func(c *Config) any { return &c.Vault.SecretIDFile }},
	{Key: "vault.check_interval", Flag: "vault-check-interval", Usage: "how often referenced Vault versions are checked for rotation",
		field: func(c *Config) any { return &c.Vault.CheckInterval }},
	{Key: "notify.panel_url", Flag: "panel-url", Usage: "address of Ferry's panel as people reach it, for links in notifications",
		field: func(c *Config) any { return &c.Notify.PanelURL }},
	{Key: "incidents.default_environment", Flag: "incidents-default-environment", Usage: "environment of alerts that name none",
		field: func(c *Config) any { return &c.Incidents.DefaultEnvironment }},
	{Key: "incidents.default_severity", Flag: "incidents-default-severity", Usage: "severity of alerts with a missing or unknown one",
		field: func(c *Config) any { return &c.Incidents.DefaultSeverity }},
	{Key: "incidents.retention", Flag: "incidents-retention", Usage: "how long closed and expired alerts are kept (0: forever)",
		field: func(c *Config) any { return &c.Incidents.Retention }},
	{Key: "incidents.housekeeping_interval", Flag: "incidents-housekeeping-interval", Usage: "how often alerts are expired and old ones deleted",
		field: func(c *Config) any { return &c.Incidents.HousekeepingInterval }},
	{Key: "errors.dsn_url", Flag: "errors-dsn-url", Usage: "address SDKs reach this server at, for the DSNs the API shows (default: the request's)",
		field: func(c *Config) any { return &c.Errors.DSNURL }},
	{Key: "errors.rate_limit", Flag: "errors-rate-limit", Usage: "events per minute a project accepts unless it has its own limit (0: no limit)",
		field: func(c *Config) any { return &c.Errors.RateLimit }},
	{Key: "errors.retention", Flag: "errors-retention", Usage: "how long error events are kept; issues keep their counts (0: forever)",
		field: func(c *Config) any { return &c.Errors.Retention }},
	{Key: "errors.spike_count", Flag: "errors-spike-count", Usage: "events of one issue within errors.spike_window that notify a spike (0: never)",
		field: func(c *Config) any { return &c.Errors.SpikeCount }},
	{Key: "errors.spike_window", Flag: "errors-spike-window", Usage: "the window of errors.spike_count",
		field: func(c *Config) any { return &c.Errors.SpikeWindow }},
	{Key: "panel.admin_user", Flag: "panel-admin-user", Usage: "name of the admin user created at start if missing",
		field: func(c *Config) any { return &c.Panel.AdminUser }},
	{Key: "panel.admin_password_file", Flag: "panel-admin-password-file", Usage: "file holding that admin's first password (default: generated into DATA_DIR/admin-password)",
		field: func(c *Config) any { return &c.Panel.AdminPasswordFile }},
	{Key: "panel.session_key_file", Flag: "panel-session-key-file", Usage: "file holding the 32-byte session key, the same on every replica (default: generated into DATA_DIR/session.key)",
		field: func(c *Config) any { return &c.Panel.SessionKeyFile }},
	{Key: "panel.secure_cookie", Flag: "panel-secure-cookie", Usage: "mark the session cookie Secure on plain HTTP too (behind a TLS proxy)",
		field: func(c *Config) any { return &c.Panel.SecureCookie }},
	{Key: "panel.session_lifetime", Flag: "panel-session-lifetime", Usage: "how long a panel login lasts",
		field: func(c *Config) any { return &c.Panel.SessionLifetime }},
	{Key: "inject.enabled", Flag: "inject", Usage: "serve the admission webhook that runs pods with Vault references through ferry exec",
		field: func(c *Config) any { return &c.Inject.Enabled }},
	{Key: "inject.listen", Flag: "inject-listen", Usage: "TLS address of the injection webhook",
		field: func(c *Config) any { return &c.Inject.Listen }},
	{Key: "inject.image", Flag: "inject-image", Usage: "image the init container copies the ferry binary from",
		field: func(c *Config) any { return &c.Inject.Image }},
	{Key: "inject.namespace", Flag: "inject-namespace", Usage: "Ferry's namespace: holds the webhook certificate, never injected",
		field: func(c *Config) any { return &c.Inject.Namespace }},
	{Key: "inject.service_name", Flag: "inject-service-name", Usage: "Service in front of the injection webhook",
		field: func(c *Config) any { return &c.Inject.ServiceName }},
	{Key: "inject.webhook_name", Flag: "inject-webhook-name", Usage: "MutatingWebhookConfiguration whose caBundle Ferry keeps current",
		field: func(c *Config) any { return &c.Inject.WebhookName }},
}

// BindFlags registers one flag per setting on fs, with the defaults of def shown in --help.
func BindFlags(fs *pflag.FlagSet, def Config) {
	for _, s := range Settings {
		usage := s.Usage + " (env " + s.Env() + ")"
		switch p := s.field(&def).(type) {
		case *string:
			fs.String(s.Flag, *p, usage)
		case *bool:
			fs.Bool(s.Flag, *p, usage)
		case *int:
			fs.Int(s.Flag, *p, usage)
		case *time.Duration:
			fs.Duration(s.Flag, *p, usage)
		}
	}
}

// ApplyEnv overlays every FERRY_* variable that lookup finds on c.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	for _, s := range Settings {
		v, ok := lookup(s.Env())
		if !ok {
			continue
		}
		if err := s.set(c, v); err != nil {
			return fmt.Errorf("environment %s: %w", s.Env(), err)
		}
	}
	return nil
}

// ApplyFlags overlays on c the flags of fs that were set on the command line.
func (c *Config) ApplyFlags(fs *pflag.FlagSet) error {
	for _, s := range Settings {
		f := fs.Lookup(s.Flag)
		if f == nil || !f.Changed {
			continue
		}
		if err := s.set(c, f.Value.String()); err != nil {
			return fmt.Errorf("flag --%s: %w", s.Flag, err)
		}
	}
	return nil
}

// Load builds the configuration from defaults, the YAML file at path (if not empty), the
// environment and the flags set in fs, in that order of precedence, then resolves and validates it.
func Load(path string, fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) (Config, error) {
	c := Default()
	if path != "" {
		if err := c.LoadFile(path); err != nil {
			return Config{}, err
		}
	}
	if err := c.ApplyEnv(lookupEnv); err != nil {
		return Config{}, err
	}
	if err := c.ApplyFlags(fs); err != nil {
		return Config{}, err
	}
	if err := c.Resolve(); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
