// Package config defines Ferry's server configuration: its YAML schema, the defaults, and how a
// file, FERRY_* environment variables and command-line flags combine.
//
// Precedence, lowest first: built-in defaults, the YAML file (--config), FERRY_* environment
// variables, flags. Every setting has one YAML key, one environment variable and one flag, listed
// by Settings. Unknown YAML keys are an error. A setting that holds a secret also accepts
// KEY_file (FERRY_KEY_FILE, --key-file): the path of a file whose content is the value, so the
// secret never has to appear in a process listing or a committed file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/channel"
)

// Config is the whole configuration of `ferry server`.
type Config struct {
	// Listen is the address the HTTP server binds.
	Listen string `yaml:"listen"`
	// DataDir holds Ferry's local state, such as the default SQLite database.
	DataDir string `yaml:"data_dir"`
	// Store is the store URL: sqlite:///path/ferry.db or postgres://user:pass@host/db.
	// Empty means SQLite under DataDir. It may hold a password, so it also accepts store_file.
	Store     string `yaml:"store"`
	StoreFile string `yaml:"store_file"`
	// ShutdownTimeout bounds how long a stopping server waits for requests in flight.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Log             Log           `yaml:"log"`
	Delivery        Delivery      `yaml:"delivery"`
	Webhooks        Webhooks      `yaml:"webhooks"`
	Vault           Vault         `yaml:"vault"`
	Inject          Inject        `yaml:"inject"`
	Notify          Notify        `yaml:"notify"`
	Incidents       Incidents     `yaml:"incidents"`
	Errors          Errors        `yaml:"errors"`
	Panel           Panel         `yaml:"panel"`
}

// Panel configures the web panel's login.
type Panel struct {
	// AdminUser is the admin created at start when no user of that name exists.
	AdminUser string `yaml:"admin_user"`
	// AdminPasswordFile holds that admin's first password (a mounted Secret). Empty makes
	// Ferry generate one into DataDir/admin-password on the first start.
	AdminPasswordFile string `yaml:"admin_password_file"`
	// SessionKeyFile holds the 32-byte key CSRF tokens derive from; it must be the same on
	// every replica. Empty means DataDir/session.key, generated on the first start.
	SessionKeyFile string `yaml:"session_key_file"`
	// SecureCookie marks the session cookie Secure even on plain HTTP requests, for a
	// server behind a proxy that terminates TLS.
	SecureCookie bool `yaml:"secure_cookie"`
	// SessionLifetime is how long a login lasts.
	SessionLifetime time.Duration `yaml:"session_lifetime"`
}

// Errors configures the error tracker that the Sentry SDKs report to.
type Errors struct {
	// DSNURL is the scheme, host and optional path by which SDKs reach this server, used
	// in the DSNs the API shows; empty means the address each API request came to.
	DSNURL string `yaml:"dsn_url"`
	// RateLimit is the events per minute a project accepts unless it has a limit of its
	// own; zero means no limit.
	RateLimit int `yaml:"rate_limit"`
	// Retention is how long events are kept; issues keep their counts. Zero keeps them.
	Retention time.Duration `yaml:"retention"`
	// SpikeCount events of one issue within SpikeWindow send error.spike; zero sends none.
	SpikeCount  int           `yaml:"spike_count"`
	SpikeWindow time.Duration `yaml:"spike_window"`
}

// Incidents configures the incident hub: how Alertmanager's labels and Alerta's fields become
// alerts, and what makes two alerts the same one.
type Incidents struct {
	// DefaultEnvironment is the environment of an alert that names none. Ferry's environments
	// are lowercase (production, stage), which is what links alerts to releases.
	DefaultEnvironment string `yaml:"default_environment"`
	// DefaultSeverity replaces a missing or unknown severity; the sender's value is kept in
	// the alert's attributes.
	DefaultSeverity string `yaml:"default_severity"`
	// DedupKeys are the fields that identify an alert; empty means Alerta's environment,
	// resource, event, customer.
	DedupKeys []string `yaml:"dedup_keys"`
	// Alertmanager names the labels that fill an alert's fields.
	Alertmanager AlertmanagerLabels `yaml:"alertmanager"`
	// Retention is how long closed and expired alerts are kept; zero keeps them.
	Retention time.Duration `yaml:"retention"`
	// HousekeepingInterval is how often alerts are expired, timeouts undone and old alerts
	// deleted.
	HousekeepingInterval time.Duration `yaml:"housekeeping_interval"`
}

// AlertmanagerLabels are the Alertmanager label names mapped onto alert fields; empty keeps
// Alerta's mapping.
type AlertmanagerLabels struct {
	ResourceLabels   []string `yaml:"resource_labels"`
	EventLabel       string   `yaml:"event_label"`
	EnvironmentLabel string   `yaml:"environment_label"`
	SeverityLabel    string   `yaml:"severity_label"`
	GroupLabel       string   `yaml:"group_label"`
	ServiceLabel     string   `yaml:"service_label"`
}

// Notify is where notifications go: the chat channels, and which events each receives. The
// channels and subscriptions are set in the YAML file only.
type Notify struct {
	// PanelURL is the address of Ferry's panel as people reach it, for links in messages.
	PanelURL      string                `yaml:"panel_url"`
	Channels      []channel.Config      `yaml:"channels"`
	Subscriptions []notify.Subscription `yaml:"subscriptions"`
}

// Vault is how Ferry reaches Vault: for Secret manifests it resolves at apply time, for the
// secret rotation of workloads, and as the defaults the injection webhook gives pods. Empty
// Address turns all of that off.
type Vault struct {
	// Address is Vault's URL, such as https://vault.vault:8200.
	Address string `yaml:"address"`
	// AuthMethod is kubernetes (default), approle or token.
	AuthMethod string `yaml:"auth_method"`
	// Role is the Vault role of Kubernetes auth; pods get it unless an annotation says otherwise.
	Role string `yaml:"role"`
	// AuthPath is the mount path of the auth method; default its name (kubernetes, approle).
	AuthPath string `yaml:"auth_path"`
	// CACert is a PEM file of the CA that signed Vault's certificate.
	CACert string `yaml:"ca_cert"`
	// TokenFile (token auth), RoleIDFile and SecretIDFile (AppRole) hold credentials; they are
	// read when Ferry logs in, so they can be rotated in place.
	TokenFile    string `yaml:"token_file"`
	RoleIDFile   string `yaml:"role_id_file"`
	SecretIDFile string `yaml:"secret_id_file"`
	// CheckInterval is how often the versions of referenced Vault paths are checked.
	CheckInterval time.Duration `yaml:"check_interval"`
}

// Inject configures the admission webhook that makes Pods whose env references Vault start
// through ferry exec.
type Inject struct {
	Enabled bool `yaml:"enabled"`
	// Listen is the address of the webhook's TLS listener.
	Listen string `yaml:"listen"`
	// Image holds the ferry binary the init container copies into the Pod.
	Image string `yaml:"image"`
	// Namespace is Ferry's own namespace: where the webhook certificate is kept, and excluded
	// from injection.
	Namespace string `yaml:"namespace"`
	// ServiceName is the Service in front of the webhook listener.
	ServiceName string `yaml:"service_name"`
	// WebhookName is the MutatingWebhookConfiguration whose caBundle Ferry keeps current.
	WebhookName string `yaml:"webhook_name"`
}

// Webhooks holds the shared secrets git providers sign push webhooks with. A provider without a
// secret is refused. Each also accepts KEY_file.
type Webhooks struct {
	GitHubSecret     string `yaml:"github_secret"`
	GitHubSecretFile string `yaml:"github_secret_file"`
	GitLabToken      string `yaml:"gitlab_token"`
	GitLabTokenFile  string `yaml:"gitlab_token_file"`
	GiteaSecret      string `yaml:"gitea_secret"`
	GiteaSecretFile  string `yaml:"gitea_secret_file"`
}

// Log configures structured logging.
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Delivery configures the GitOps engine and its Kubernetes client.
type Delivery struct {
	// Enabled turns the delivery subsystem on; when on, /readyz also requires a working
	// Kubernetes client.
	Enabled bool `yaml:"enabled"`
	// Kubeconfig is the path of a kubeconfig file. Empty means $KUBECONFIG, then
	// ~/.kube/config, then the in-cluster service account.
	Kubeconfig string `yaml:"kubeconfig"`
	// Concurrency is how many Applications do a sync's work at once. A sync waiting for its
	// objects to become healthy gives its slot back meanwhile (internal/delivery/slots.go).
	Concurrency int `yaml:"concurrency"`
	// InstallCRDs applies Ferry's CustomResourceDefinitions at start.
	InstallCRDs bool `yaml:"install_crds"`
	// LeaderElection lets one of several replicas run delivery; the others stand by.
	LeaderElection bool `yaml:"leader_election"`
	// LeaderElectionNamespace holds the leader lease (default: the in-cluster namespace).
	LeaderElectionNamespace string `yaml:"leader_election_namespace"`
}

// Default returns the configuration used when nothing else is said.
func Default() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		DataDir:         defaultDataDir(),
		ShutdownTimeout: 10 * time.Second,
		Log:             Log{Level: "info", Format: "text"},
		Delivery:        Delivery{Enabled: true, Concurrency: 20, InstallCRDs: true},
		Vault:           Vault{AuthMethod: "kubernetes", CheckInterval: time.Minute},
		Incidents: Incidents{DefaultEnvironment: "production", DefaultSeverity: "warning",
			Retention: 7 * 24 * time.Hour, HousekeepingInterval: 10 * time.Second},
		Errors: Errors{RateLimit: 60000, Retention: 30 * 24 * time.Hour, SpikeCount: 100, SpikeWindow: 5 * time.Minute},
		Panel:  Panel{AdminUser: "admin", SessionLifetime: 12 * time.Hour},
		Inject: Inject{Listen: ":8443", Image: "ghcr.io/ferrycd/ferry:latest", Namespace: "ferry-system",
			ServiceName: "ferry-webhook", WebhookName: "ferry-secrets"},
	}
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "ferry")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "ferry")
	}
	return "ferry-data"
}

// LoadFile decodes the YAML file at path over c. Unknown keys, duplicate keys, type mismatches
// and more than one document are errors that name the file, line and key.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if err := c.decode(data); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

func (c *Config) decode(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return yamlError(err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

// unknownField matches yaml.v3's report of a key that has no field.
var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// yamlError flattens yaml.v3's multi-line TypeError into one line and words unknown keys the
// way users name them.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = unknownField.ReplaceAllString(m, `unknown key "$1"`)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// Resolve reads every *_file secret into its setting and fills derived defaults. Call it once,
// after all sources are applied and before Validate.
func (c *Config) Resolve() error {
	for _, s := range []struct {
		key         string
		value, file *string
	}{
		{"store", &c.Store, &c.StoreFile},
		{"webhooks.github_secret", &c.Webhooks.GitHubSecret, &c.Webhooks.GitHubSecretFile},
		{"webhooks.gitlab_token", &c.Webhooks.GitLabToken, &c.Webhooks.GitLabTokenFile},
		{"webhooks.gitea_secret", &c.Webhooks.GiteaSecret, &c.Webhooks.GiteaSecretFile},
	} {
		v, err := fromFile(s.key, *s.value, *s.file)
		if err != nil {
			return err
		}
		*s.value, *s.file = v, ""
	}
	if c.Store == "" {
		c.Store = "sqlite://" + filepath.ToSlash(filepath.Join(absDir(c.DataDir), "ferry.db"))
	}
	return nil
}

func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// fromFile returns value, or the content of file when it is set. Both set is an error.
func fromFile(key, value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", fmt.Errorf("config: %s and %s_file are both set; use one", key, key)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("config: %s_file: %w", key, err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

// Validate reports the first setting that cannot work, naming its key.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("config: listen %q: %w", c.Listen, err)
	}
	if c.DataDir == "" {
		return errors.New("config: data_dir must not be empty")
	}
	if c.Delivery.Concurrency <= 0 {
		return fmt.Errorf("config: delivery.concurrency %d must be positive", c.Delivery.Concurrency)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("config: shutdown_timeout %s must be positive", c.ShutdownTimeout)
	}
	if c.Vault.Address != "" {
		if u, err := url.Parse(c.Vault.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: vault.address %q: want http(s)://HOST[:PORT]", c.Vault.Address)
		}
	}
	switch c.Vault.AuthMethod {
	case "kubernetes", "approle", "token":
	default:
		return fmt.Errorf("config: vault.auth_method %q: want kubernetes, approle or token", c.Vault.AuthMethod)
	}
	if c.Vault.CheckInterval <= 0 {
		return fmt.Errorf("config: vault.check_interval %s must be positive", c.Vault.CheckInterval)
	}
	if c.Inject.Enabled {
		if c.Vault.Address == "" {
			return errors.New("config: inject.enabled needs vault.address: injected pods must know where Vault is")
		}
		if _, _, err := net.SplitHostPort(c.Inject.Listen); err != nil {
			return fmt.Errorf("config: inject.listen %q: %w", c.Inject.Listen, err)
		}
		if c.Inject.Image == "" || c.Inject.Namespace == "" || c.Inject.ServiceName == "" || c.Inject.WebhookName == "" {
			return errors.New("config: inject.image, inject.namespace, inject.service_name and inject.webhook_name must be set")
		}
	}
	if _, err := incident.NewIdentity(c.Incidents.DedupKeys); err != nil && len(c.Incidents.DedupKeys) > 0 {
		return fmt.Errorf("config: incidents.dedup_keys: %w", err)
	}
	if sev, ok := incident.ParseSeverity(c.Incidents.DefaultSeverity, ""); !ok || sev.IsNormal() {
		return fmt.Errorf("config: incidents.default_severity %q: want a severity such as warning or major", c.Incidents.DefaultSeverity)
	}
	if c.Incidents.Retention < 0 || c.Incidents.HousekeepingInterval <= 0 {
		return errors.New("config: incidents.retention must not be negative and incidents.housekeeping_interval must be positive")
	}
	if c.Incidents.DefaultEnvironment == "" {
		return errors.New("config: incidents.default_environment must not be empty")
	}
	if err := c.Errors.validate(); err != nil {
		return err
	}
	if c.Panel.AdminUser == "" || c.Panel.SessionLifetime <= 0 {
		return errors.New("config: panel.admin_user must be set and panel.session_lifetime must be positive")
	}
	if err := c.Notify.validate(); err != nil {
		return fmt.Errorf("config: notify: %w", err)
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		return err
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("config: log.format %q: want text or json", c.Log.Format)
	}
	return nil
}

func (n Notify) validate() error {
	if n.PanelURL != "" {
		if u, err := url.Parse(n.PanelURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("panel_url %q: want http(s)://HOST[/PATH]", n.PanelURL)
		}
	}
	names := make([]string, 0, len(n.Channels))
	for _, c := range n.Channels {
		if err := c.Validate(); err != nil {
			return err
		}
		if slices.Contains(names, c.Name) {
			return fmt.Errorf("channel %s: defined twice", c.Name)
		}
		names = append(names, c.Name)
	}
	_, err := notify.NewRouter(names, n.Subscriptions)
	return err
}

// ChannelNames lists the configured channels' names.
func (n Notify) ChannelNames() []string {
	names := make([]string, len(n.Channels))
	for i, c := range n.Channels {
		names[i] = c.Name
	}
	return names
}

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("config: log.level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger builds the process logger the configuration asks for.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	level, _ := ParseLevel(c.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (e Errors) validate() error {
	if e.DSNURL != "" {
		if u, err := url.Parse(e.DSNURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("config: errors.dsn_url %q: want http(s)://HOST[/PATH]", e.DSNURL)
		}
	}
	if e.RateLimit < 0 || e.Retention < 0 || e.SpikeCount < 0 || e.SpikeWindow < 0 {
		return errors.New("config: errors.rate_limit, errors.retention, errors.spike_count and errors.spike_window must not be negative")
	}
	if e.SpikeCount > 0 && e.SpikeWindow == 0 {
		return errors.New("config: errors.spike_window must be positive when errors.spike_count is")
	}
	return nil
}
