package testenv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// vaultVersion names the cache directory hack/testbin-vault.sh fills; keep the two in step.
const vaultVersion = "v1.21.1"

// ErrNoVault means the vault binary is not built.
var ErrNoVault = errors.New("vault binary missing")

// VaultBin returns the path of the vault binary: $FERRY_VAULT, else vault in $FERRY_VAULT_DIR,
// else the cache directory hack/testbin-vault.sh fills. The error wraps ErrNoVault when the
// file is missing.
func VaultBin() (string, error) {
	bin := os.Getenv("FERRY_VAULT")
	if bin == "" {
		dir := os.Getenv("FERRY_VAULT_DIR")
		if dir == "" {
			cache := os.Getenv("FERRY_CACHE")
			if cache == "" {
				userCache, err := os.UserCacheDir()
				if err != nil {
					return "", fmt.Errorf("%w: locate cache directory: %w; set FERRY_VAULT or run \"make testbin\"", ErrNoVault, err)
				}
				cache = filepath.Join(userCache, "ferry")
			}
			dir = filepath.Join(cache, "testbin", "vault-"+vaultVersion)
		}
		bin = filepath.Join(dir, "vault")
	}
	return bin, checkVaultBin(bin)
}

func checkVaultBin(bin string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w: no %s; run \"make testbin\" to build it", ErrNoVault, bin)
	}
	return nil
}

// VaultOptions tunes StartVault. The zero value is ready to use.
type VaultOptions struct {
	// Bin is the vault binary; empty means the result of VaultBin().
	Bin string
	// Logger receives a line when the server is up; nil discards.
	Logger *slog.Logger
	// StopTimeout bounds how long Stop waits after SIGTERM before it sends SIGKILL; zero
	// means DefaultStopTimeout.
	StopTimeout time.Duration
}

// Vault is a running `vault server -dev`: in memory, unsealed, plain HTTP on the loopback
// interface, with KV version 2 mounted at secret/. Its exported fields are read-only.
type Vault struct {
	// Addr is the server's address, http://127.0.0.1:PORT.
	Addr string
	// RootToken is the dev server's root token.
	RootToken string
	// Dir is the temporary directory that is the server's HOME and working directory and
	// holds vault.log; Stop removes it.
	Dir string

	logger      *slog.Logger
	stopTimeout time.Duration
	proc        *process

	setupMu sync.Mutex // serialises enabling auth methods, which is check-then-act

	stopOnce sync.Once
	stopErr  error
}

// StartVault runs a Vault dev server on a free loopback port and returns once
// /v1/sys/health reports it initialized, unsealed and active. ctx bounds the start only;
// without a deadline, StartVault gives up after DefaultStartTimeout. A start error quotes
// the end of the server's log. Call Stop when done.
func StartVault(ctx context.Context, opts VaultOptions) (_ *Vault, err error) {
	bin := opts.Bin
	if bin == "" {
		if bin, err = VaultBin(); err != nil {
			return nil, err
		}
	} else if err := checkVaultBin(bin); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}

	v := &Vault{RootToken: rand.Text(), logger: opts.Logger, stopTimeout: opts.StopTimeout}
	if v.logger == nil {
		v.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if v.stopTimeout <= 0 {
		v.stopTimeout = DefaultStopTimeout
	}
	if v.Dir, err = os.MkdirTemp("", "ferry-vault-"); err != nil {
		return nil, fmt.Errorf("create vault directory: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, v.Stop())
		}
	}()

	// Another process may take the port between freePorts and vault's bind; a few tries
	// make that race harmless.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		err = v.start(ctx, bin)
		if err == nil || attempt == attempts || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		v.logger.Info("vault port taken, retrying", "attempt", attempt)
	}
	if err != nil {
		return nil, err
	}
	v.logger.Info("vault ready", "addr", v.Addr, "dir", v.Dir, "pid", v.proc.pid(), "log", v.proc.logPath)
	return v, nil
}

// start runs the server once and waits until it is healthy; on failure it leaves no process.
func (v *Vault) start(ctx context.Context, bin string) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	v.Addr = "http://" + hostPort(ports[0])
	logPath := filepath.Join(v.Dir, "vault.log")
	if err := os.Remove(logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove old vault log: %w", err)
	}
	// The dev server would also listen for cluster traffic on the port after its own, which
	// freePorts never checked; a single server needs no cluster.
	confPath := filepath.Join(v.Dir, "vault.hcl")
	if err := os.WriteFile(confPath, []byte("disable_clustering = true\n"), 0o600); err != nil {
		return fmt.Errorf("write vault config: %w", err)
	}
	p, err := startProcess(v.Dir, "vault", bin, []string{
		"server", "-dev",
		"-config=" + confPath,
		"-dev-listen-address=" + hostPort(ports[0]),
		"-dev-root-token-id=" + v.RootToken,
		"-dev-no-store-token",
	}, vaultEnv(v.Dir))
	if err != nil {
		return err
	}
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	probes := &prober{transport: transport, client: &http.Client{Transport: transport}}
	if err := p.waitFor(ctx, "vault /v1/sys/health", probes.get(v.Addr+"/v1/sys/health")); err != nil {
		return errors.Join(err, p.stop(v.stopTimeout))
	}
	v.proc = p
	return nil
}

// vaultEnv is what the server gets on top of the test's environment: a HOME of its own and
// every VAULT_* variable of the test's environment emptied, so a developer's VAULT_ADDR or
// VAULT_TOKEN cannot change the server.
func vaultEnv(home string) []string {
	env := []string{"HOME=" + home}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "VAULT_") {
			env = append(env, name+"=")
		}
	}
	return env
}

// Stop ends the server with SIGTERM and, after the stop timeout, SIGKILL, then removes Dir.
// It is safe to call more than once.
func (v *Vault) Stop() error {
	v.stopOnce.Do(func() {
		var errs []error
		if v.proc != nil {
			errs = append(errs, v.proc.stop(v.stopTimeout))
		}
		if err := os.RemoveAll(v.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove vault directory: %w", err))
		}
		v.stopErr = errors.Join(errs...)
	})
	return v.stopErr
}

// NewVault starts a Vault dev server for one test and stops it when the test ends. A missing
// binary fails the test, never skips it: CI builds it, and must prove what needs it.
func NewVault(t testing.TB, opts VaultOptions) *Vault {
	t.Helper()
	v, err := StartVault(t.Context(), opts)
	if err != nil {
		t.Fatalf("start vault: %v", err)
	}
	t.Cleanup(func() {
		if err := v.Stop(); err != nil {
			t.Errorf("stop vault: %v", err)
		}
	})
	return v
}

// Client returns a new client of the server authenticated with the root token. It ignores
// the VAULT_* environment variables the api package otherwise reads, except VAULT_HEADERS.
// Each call returns a client of its own, so a test may change its token freely.
func (v *Vault) Client() *vaultapi.Client {
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: v.Addr, Timeout: time.Minute})
	if err != nil {
		// NewClient fails only on a malformed address or VAULT_HEADERS.
		panic(fmt.Sprintf("testenv: vault client: %v", err))
	}
	c.SetToken(v.RootToken)
	c.ClearNamespace()
	return c
}

// EnableKV1 mounts a KV version 1 secrets engine at mount.
func (v *Vault) EnableKV1(ctx context.Context, mount string) error {
	err := v.Client().Sys().MountWithContext(ctx, mount, &vaultapi.MountInput{
		Type:    "kv",
		Options: map[string]string{"version": "1"},
	})
	if err != nil {
		return fmt.Errorf("mount kv v1 at %s: %w", mount, err)
	}
	return nil
}

// PutPolicy creates or replaces the ACL policy name.
func (v *Vault) PutPolicy(ctx context.Context, name, hcl string) error {
	if err := v.Client().Sys().PutPolicyWithContext(ctx, name, hcl); err != nil {
		return fmt.Errorf("put policy %s: %w", name, err)
	}
	return nil
}

// enableAuth enables the auth method typ at mount unless something is mounted there already.
func (v *Vault) enableAuth(ctx context.Context, c *vaultapi.Client, mount, typ string) error {
	v.setupMu.Lock()
	defer v.setupMu.Unlock()
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list auth methods: %w", err)
	}
	if _, ok := auths[strings.Trim(mount, "/")+"/"]; ok {
		return nil
	}
	if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &vaultapi.EnableAuthOptions{Type: typ}); err != nil {
		return fmt.Errorf("enable %s auth at %s: %w", typ, mount, err)
	}
	return nil
}

// EnableAppRole enables the AppRole auth method at approle/ (once), creates role with the
// given token policies, and returns its role ID and a fresh secret ID. Log in with
// auth/approle/login {role_id, secret_id}.
func (v *Vault) EnableAppRole(ctx context.Context, role string, policies ...string) (roleID, secretID string, err error) {
	c := v.Client()
	if err := v.enableAuth(ctx, c, "approle", "approle"); err != nil {
		return "", "", err
	}
	path := "auth/approle/role/" + role
	if _, err := c.Logical().WriteWithContext(ctx, path, map[string]any{"token_policies": policies}); err != nil {
		return "", "", fmt.Errorf("write approle role %s: %w", role, err)
	}
	s, err := c.Logical().ReadWithContext(ctx, path+"/role-id")
	if err != nil {
		return "", "", fmt.Errorf("read role id of %s: %w", role, err)
	}
	if roleID, err = stringField(s, "role_id"); err != nil {
		return "", "", fmt.Errorf("read role id of %s: %w", role, err)
	}
	s, err = c.Logical().WriteWithContext(ctx, path+"/secret-id", nil)
	if err != nil {
		return "", "", fmt.Errorf("create secret id of %s: %w", role, err)
	}
	if secretID, err = stringField(s, "secret_id"); err != nil {
		return "", "", fmt.Errorf("create secret id of %s: %w", role, err)
	}
	return roleID, secretID, nil
}

func stringField(s *vaultapi.Secret, key string) (string, error) {
	if s == nil {
		return "", errors.New("empty response")
	}
	val, ok := s.Data[key].(string)
	if !ok || val == "" {
		return "", fmt.Errorf("response has no %s", key)
	}
	return val, nil
}

// KubernetesAuthOptions configures EnableKubernetesAuth.
type KubernetesAuthOptions struct {
	// Mount is where the auth method goes; empty means "kubernetes", so logins go to
	// auth/kubernetes/login.
	Mount string
	// ReviewerNamespace holds the ServiceAccount whose token Vault sends TokenReviews with;
	// empty means "default".
	ReviewerNamespace string
	// Roles are created after the method is configured.
	Roles []KubernetesRole
}

// KubernetesRole is a role of Vault's kubernetes auth method: ServiceAccounts named in
// ServiceAccounts (or "*") in one of Namespaces (or "*") log in with it and get Policies.
type KubernetesRole struct {
	Name            string
	ServiceAccounts []string
	Namespaces      []string
	Policies        []string
	// Audience, when set, is the audience the ServiceAccount token must carry.
	Audience string
}

// EnableKubernetesAuth enables and configures Vault's kubernetes auth method against the API
// server of cfg, an admin configuration such as ControlPlane.Config: it creates a token
// reviewer ServiceAccount bound to system:auth-delegator, gives Vault a token of it from
// the TokenRequest API, the server's address and CA, and disable_local_ca_jwt (Vault runs
// outside the cluster), then writes opts.Roles. Logins make Vault send a TokenReview to
// that API server.
//
// The ServiceAccount (generated name vault-token-reviewer-*) and its ClusterRoleBinding of
// the same name stay behind; several Vaults can share one control plane.
func (v *Vault) EnableKubernetesAuth(ctx context.Context, cfg *rest.Config, opts KubernetesAuthOptions) error {
	mount := opts.Mount
	if mount == "" {
		mount = "kubernetes"
	}
	ns := opts.ReviewerNamespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	caPEM := cfg.CAData
	if len(caPEM) == 0 && cfg.CAFile != "" {
		var err error
		if caPEM, err = os.ReadFile(cfg.CAFile); err != nil {
			return fmt.Errorf("read API server CA: %w", err)
		}
	}
	if len(caPEM) == 0 {
		return errors.New("kubernetes auth: the rest.Config has no CA certificate")
	}

	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create kubernetes client: %w", err)
	}
	sa, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "vault-token-reviewer-", Namespace: ns},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create token reviewer ServiceAccount in %s: %w", ns, err)
	}
	name := sa.Name
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ClusterRoleBinding %s: %w", name, err)
	}
	reviewerJWT, err := ServiceAccountToken(ctx, kube, ns, name, 24*time.Hour)
	if err != nil {
		return err
	}

	c := v.Client()
	if err := v.enableAuth(ctx, c, mount, "kubernetes"); err != nil {
		return err
	}
	_, err = c.Logical().WriteWithContext(ctx, "auth/"+mount+"/config", map[string]any{
		"kubernetes_host":      cfg.Host,
		"kubernetes_ca_cert":   string(caPEM),
		"token_reviewer_jwt":   reviewerJWT,
		"disable_local_ca_jwt": true,
	})
	if err != nil {
		return fmt.Errorf("configure kubernetes auth at %s: %w", mount, err)
	}
	for _, role := range opts.Roles {
		if err := v.PutKubernetesRole(ctx, mount, role); err != nil {
			return err
		}
	}
	return nil
}

// PutKubernetesRole creates or replaces a role of the kubernetes auth method at mount ("" means
// "kubernetes").
func (v *Vault) PutKubernetesRole(ctx context.Context, mount string, role KubernetesRole) error {
	if mount == "" {
		mount = "kubernetes"
	}
	data := map[string]any{
		"bound_service_account_names":      role.ServiceAccounts,
		"bound_service_account_namespaces": role.Namespaces,
		"token_policies":                   role.Policies,
	}
	if role.Audience != "" {
		data["audience"] = role.Audience
	}
	if _, err := v.Client().Logical().WriteWithContext(ctx, "auth/"+mount+"/role/"+role.Name, data); err != nil {
		return fmt.Errorf("write kubernetes auth role %s: %w", role.Name, err)
	}
	return nil
}

// ServiceAccountToken returns a token of the ServiceAccount namespace/name from the
// TokenRequest API, valid for ttl, with the API server's default audience.
func ServiceAccountToken(ctx context.Context, kube kubernetes.Interface, namespace, name string, ttl time.Duration) (string, error) {
	tr, err := kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(ttl / time.Second))},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("request token of ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}
