package vault

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	vaultapi "github.com/hashicorp/vault/api"
)

// Auth methods.
const (
	MethodKubernetes = "kubernetes"
	MethodAppRole    = "approle"
	MethodToken      = "token"
)

// Defaults.
const (
	// DefaultTimeout bounds one request to Vault when Config.Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxRetries is how often a request is retried when Config.MaxRetries is zero.
	DefaultMaxRetries = 2
	// DefaultJWTFile is where Kubernetes mounts a Pod's ServiceAccount token.
	DefaultJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// Environment variables ConfigFromEnv reads; the package documentation describes them.
const (
	EnvAddr          = "VAULT_ADDR"
	EnvNamespace     = "VAULT_NAMESPACE"
	EnvCACert        = "VAULT_CACERT"
	EnvCACertBytes   = "VAULT_CACERT_BYTES"
	EnvCAPath        = "VAULT_CAPATH"
	EnvClientCert    = "VAULT_CLIENT_CERT"
	EnvClientKey     = "VAULT_CLIENT_KEY"
	EnvTLSServerName = "VAULT_TLS_SERVER_NAME"
	EnvSkipVerify    = "VAULT_SKIP_VERIFY"
	EnvClientTimeout = "VAULT_CLIENT_TIMEOUT"
	EnvMaxRetries    = "VAULT_MAX_RETRIES"
	EnvToken         = "VAULT_TOKEN"
	EnvTokenFile     = "VAULT_TOKEN_FILE"
	EnvAuthMethod    = "FERRY_VAULT_AUTH_METHOD"
	EnvAuthPath      = "FERRY_VAULT_AUTH_PATH"
	EnvRole          = "FERRY_VAULT_ROLE"
	EnvJWTFile       = "FERRY_VAULT_JWT_FILE"
	EnvRoleID        = "FERRY_VAULT_ROLE_ID"
	EnvRoleIDFile    = "FERRY_VAULT_ROLE_ID_FILE"
	EnvSecretIDFile  = "FERRY_VAULT_SECRET_ID_FILE"
)

// Config is how to reach Vault and log in.
type Config struct {
	// Address is Vault's URL, such as https://vault.example.com:8200. Required.
	Address string
	// Namespace is the Vault Enterprise namespace; empty means none.
	Namespace string
	// TLS configures how Vault's certificate is verified and the client certificate.
	TLS TLSConfig
	// Timeout bounds one request to Vault, its retries included; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is how often a request is retried after it failed to connect or got a 5xx
	// or 429 answer, with a pause of 1 to 1.5 seconds before each retry. Zero means
	// DefaultMaxRetries; a negative number means no retries.
	MaxRetries int
	// Auth is how to log in.
	Auth Auth

	// wrapTransport, when set, wraps the HTTP transport (tests count requests with it).
	wrapTransport func(http.RoundTripper) http.RoundTripper
}

// TLSConfig is the TLS part of Config, with the meaning of the Vault CLI's variables.
type TLSConfig struct {
	// CACert is a PEM file of CA certificates to verify Vault's certificate with.
	CACert string
	// CACertBytes is PEM text of CA certificates, used instead of CACert.
	CACertBytes []byte
	// CAPath is a directory of PEM CA certificates.
	CAPath string
	// ClientCert and ClientKey are PEM files of a client certificate and its key.
	ClientCert string
	ClientKey  string
	// TLSServerName is the name to verify Vault's certificate against.
	TLSServerName string
	// Insecure skips verifying Vault's certificate.
	Insecure bool
}

// Auth says how to log in to Vault.
type Auth struct {
	// Method is MethodKubernetes, MethodAppRole or MethodToken. Empty means MethodToken when
	// Token or TokenFile is set, else MethodKubernetes.
	Method string
	// MountPath is where the auth method is mounted, without "auth/"; empty means the
	// method's name ("kubernetes", "approle"). The token method has none.
	MountPath string

	// Role is the role of the kubernetes method.
	Role string
	// JWT is the ServiceAccount token for the kubernetes method; when empty, it is read
	// from JWTFile, or DefaultJWTFile. The file is read at every login, so a rotated
	// token is picked up.
	JWT     string
	JWTFile string

	// RoleID, or the content of RoleIDFile, is the role ID of the approle method.
	RoleID     string
	RoleIDFile string
	// SecretID, or the content of SecretIDFile, is its secret ID; neither is needed for a
	// role with bind_secret_id=false.
	SecretID     string
	SecretIDFile string

	// Token, or the content of TokenFile, is the token of the token method.
	Token     string
	TokenFile string
}

// EffectiveMethod is the auth method Login uses: Method, or the default it implies.
func (a Auth) EffectiveMethod() string { return a.method() }

// method returns the auth method a chose, applying the default.
func (a Auth) method() string {
	switch {
	case a.Method != "":
		return a.Method
	case a.Token != "" || a.TokenFile != "":
		return MethodToken
	default:
		return MethodKubernetes
	}
}

// mountPath returns where the auth method is mounted.
func (a Auth) mountPath() string {
	if p := strings.Trim(a.MountPath, "/"); p != "" {
		return p
	}
	return a.method()
}

// ConfigFromEnv returns the Config the environment describes, reading variables with lookup
// (such as os.LookupEnv); the package documentation lists them. It reads no file: files
// named by variables are read at Login.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	cfg := Config{
		Address:   get(EnvAddr),
		Namespace: get(EnvNamespace),
		TLS: TLSConfig{
			CACert:        get(EnvCACert),
			CACertBytes:   []byte(get(EnvCACertBytes)),
			CAPath:        get(EnvCAPath),
			ClientCert:    get(EnvClientCert),
			ClientKey:     get(EnvClientKey),
			TLSServerName: get(EnvTLSServerName),
		},
		Auth: Auth{
			Method:       get(EnvAuthMethod),
			MountPath:    get(EnvAuthPath),
			Role:         get(EnvRole),
			JWTFile:      get(EnvJWTFile),
			RoleID:       get(EnvRoleID),
			RoleIDFile:   get(EnvRoleIDFile),
			SecretIDFile: get(EnvSecretIDFile),
			Token:        get(EnvToken),
			TokenFile:    get(EnvTokenFile),
		},
	}
	if len(cfg.TLS.CACertBytes) == 0 {
		cfg.TLS.CACertBytes = nil
	}
	var errs []error
	if v := get(EnvSkipVerify); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", EnvSkipVerify, v))
		}
		cfg.TLS.Insecure = b
	}
	if v := get(EnvClientTimeout); v != "" {
		d, err := parseTimeout(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want seconds or a duration such as 30s", EnvClientTimeout, v))
		}
		cfg.Timeout = d
	}
	if v := get(EnvMaxRetries); v != "" {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want a number of retries", EnvMaxRetries, v))
		}
		cfg.MaxRetries = int(n)
		if n == 0 {
			cfg.MaxRetries = -1
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("vault configuration: %w", err)
	}
	return cfg, cfg.validate()
}

// parseTimeout reads whole seconds or a Go duration, as the Vault CLI does.
func parseTimeout(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = errors.New("not positive")
	}
	return d, err
}

// validate checks what can be checked without Vault.
func (c Config) validate() error {
	if c.Address == "" {
		return fmt.Errorf("vault configuration: no Vault address (set %s)", EnvAddr)
	}
	switch m := c.Auth.method(); m {
	case MethodKubernetes:
		if c.Auth.Role == "" {
			return fmt.Errorf("vault configuration: the kubernetes auth method needs a role (set %s)", EnvRole)
		}
	case MethodAppRole:
		if c.Auth.RoleID == "" && c.Auth.RoleIDFile == "" {
			return fmt.Errorf("vault configuration: the approle auth method needs a role ID (set %s or %s)", EnvRoleIDFile, EnvRoleID)
		}
	case MethodToken:
		if c.Auth.Token == "" && c.Auth.TokenFile == "" {
			return fmt.Errorf("vault configuration: the token auth method needs a token (set %s or %s)", EnvTokenFile, EnvToken)
		}
	default:
		return fmt.Errorf("vault configuration: auth method %q: want %s, %s or %s", m, MethodKubernetes, MethodAppRole, MethodToken)
	}
	return nil
}

func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c Config) maxRetries() int {
	switch {
	case c.MaxRetries < 0:
		return 0
	case c.MaxRetries == 0:
		return DefaultMaxRetries
	default:
		return c.MaxRetries
	}
}

// newAPIClient builds a client of the api package from c alone, without a token.
func (c Config) newAPIClient() (*vaultapi.Client, error) {
	transport := cleanhttp.DefaultPooledTransport()
	transport.TLSHandshakeTimeout = 10 * time.Second
	transport.MaxIdleConnsPerHost = maxParallel
	httpClient := &http.Client{
		Transport: transport,
		// The api package follows redirects itself (to the active node of a cluster).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	apiCfg := &vaultapi.Config{
		Address:      c.Address,
		HttpClient:   httpClient,
		Timeout:      c.timeout(),
		MaxRetries:   c.maxRetries(),
		MinRetryWait: time.Second,
		MaxRetryWait: 1500 * time.Millisecond,
	}
	err := apiCfg.ConfigureTLS(&vaultapi.TLSConfig{
		CACert:        c.TLS.CACert,
		CACertBytes:   c.TLS.CACertBytes,
		CAPath:        c.TLS.CAPath,
		ClientCert:    c.TLS.ClientCert,
		ClientKey:     c.TLS.ClientKey,
		TLSServerName: c.TLS.TLSServerName,
		Insecure:      c.TLS.Insecure,
	})
	if err != nil {
		return nil, fmt.Errorf("vault TLS configuration: %w", err)
	}
	if c.wrapTransport != nil {
		httpClient.Transport = c.wrapTransport(httpClient.Transport)
	}
	client, err := vaultapi.NewClient(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", c.Address, err)
	}
	// NewClient reads VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS from the process
	// environment; undo that so only c counts. The namespace is a header too.
	client.SetHeaders(http.Header{vaultapi.RequestHeaderName: []string{"true"}})
	client.ClearToken()
	if c.Namespace != "" {
		client.SetNamespace(c.Namespace)
	}
	return client, nil
}
