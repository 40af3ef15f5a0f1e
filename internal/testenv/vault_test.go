package testenv

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestVaultStartStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	begin := time.Now()
	v, err := StartVault(ctx, VaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vault healthy %v after start", time.Since(begin))
	if kib, err := rssKiB(v.proc.pid()); err == nil {
		t.Logf("RSS vault %d MiB", kib>>10)
	}

	health, err := v.Client().Sys().HealthWithContext(ctx)
	if err != nil {
		_ = v.Stop()
		t.Fatal(err)
	}
	if !health.Initialized || health.Sealed {
		t.Errorf("health = %+v, want initialized and unsealed", health)
	}
	t.Logf("vault version %s", health.Version)
	self, err := v.Client().Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		t.Errorf("look up root token: %v", err)
	} else if policies, _ := self.TokenPolicies(); !cmp.Equal(policies, []string{"root"}) {
		t.Errorf("root token policies = %v, want [root]", policies)
	}
	if _, err := os.Stat(filepath.Join(v.Dir, ".vault-token")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat .vault-token = %v, want not exist", err)
	}

	begin = time.Now()
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(begin))
	if err := syscall.Kill(-v.proc.pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group of vault (pid %d) still has members: kill -0 = %v", v.proc.pid(), err)
	}
	if _, err := os.Stat(v.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat %s after Stop = %v, want not exist", v.Dir, err)
	}
	if resp, err := http.Get(v.Addr + "/v1/sys/health"); err == nil {
		_ = resp.Body.Close()
		t.Errorf("vault still answers after Stop")
	}
	if err := v.Stop(); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
}

func TestVaultKV(t *testing.T) {
	v := NewVault(t, VaultOptions{})
	ctx := t.Context()
	c := v.Client()

	want := map[string]any{"username": "ferry", "password": "s3cret"}
	if _, err := c.KVv2("secret").Put(ctx, "app/db", want); err != nil {
		t.Fatalf("kv v2 put: %v", err)
	}
	got, err := c.KVv2("secret").Get(ctx, "app/db")
	if err != nil {
		t.Fatalf("kv v2 get: %v", err)
	}
	if diff := cmp.Diff(want, got.Data); diff != "" {
		t.Errorf("kv v2 secret (-want +got):\n%s", diff)
	}
	if got.VersionMetadata == nil || got.VersionMetadata.Version != 1 {
		t.Errorf("kv v2 version metadata = %+v, want version 1", got.VersionMetadata)
	}
	// The raw read, as a client without the KV helpers sees it.
	raw, err := c.Logical().ReadWithContext(ctx, "secret/data/app/db")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, raw.Data["data"]); diff != "" {
		t.Errorf("raw kv v2 read (-want +got):\n%s", diff)
	}
	missing, err := c.Logical().ReadWithContext(ctx, "secret/data/app/missing")
	if missing != nil || err != nil {
		t.Errorf("read of a missing kv v2 path = %v, %v; want nil, nil", missing, err)
	}

	if err := v.EnableKV1(ctx, "kv1"); err != nil {
		t.Fatal(err)
	}
	want1 := map[string]any{"token": "abc"}
	if err := c.KVv1("kv1").Put(ctx, "app/api", want1); err != nil {
		t.Fatalf("kv v1 put: %v", err)
	}
	raw, err = c.Logical().ReadWithContext(ctx, "kv1/app/api")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want1, raw.Data); diff != "" {
		t.Errorf("kv v1 secret (-want +got):\n%s", diff)
	}
	missing, err = c.Logical().ReadWithContext(ctx, "kv1/app/missing")
	if missing != nil || err != nil {
		t.Errorf("read of a missing kv v1 path = %v, %v; want nil, nil", missing, err)
	}
}

// readAppPolicy may read the KV v2 secrets under secret/app/ and nothing else.
const readAppPolicy = `path "secret/data/app/*" { capabilities = ["read"] }`

// seedSecrets writes one secret readAppPolicy allows and one it does not.
func seedSecrets(t *testing.T, v *Vault) {
	t.Helper()
	c := v.Client()
	if _, err := c.KVv2("secret").Put(t.Context(), "app/db", map[string]any{"password": "allowed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(t.Context(), "other/db", map[string]any{"password": "forbidden"}); err != nil {
		t.Fatal(err)
	}
	if err := v.PutPolicy(t.Context(), "read-app", readAppPolicy); err != nil {
		t.Fatal(err)
	}
}

// checkReadAppOnly proves a client logged in with readAppPolicy reads secret/app/db and is
// refused everything else.
func checkReadAppOnly(t *testing.T, c *vaultapi.Client) {
	t.Helper()
	ctx := t.Context()
	s, err := c.KVv2("secret").Get(ctx, "app/db")
	if err != nil {
		t.Errorf("read allowed secret: %v", err)
	} else if s.Data["password"] != "allowed" {
		t.Errorf("allowed secret = %v", s.Data)
	}
	if _, err := c.KVv2("secret").Get(ctx, "other/db"); !isStatus(err, http.StatusForbidden) {
		t.Errorf("read forbidden secret: error = %v, want 403", err)
	}
	if _, err := c.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "x"}); !isStatus(err, http.StatusForbidden) {
		t.Errorf("write allowed secret: error = %v, want 403", err)
	}
}

func isStatus(err error, code int) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

// login writes data to the login path with a token-less client and returns a client with the
// token it got.
func login(t *testing.T, v *Vault, path string, data map[string]any) (*vaultapi.Client, error) {
	t.Helper()
	c := v.Client()
	c.ClearToken()
	s, err := c.Logical().WriteWithContext(t.Context(), path, data)
	if err != nil {
		return nil, err
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		t.Fatalf("login at %s returned no token: %+v", path, s)
	}
	if diff := cmp.Diff([]string{"default", "read-app"}, s.Auth.Policies); diff != "" {
		t.Errorf("login token policies (-want +got):\n%s", diff)
	}
	c.SetToken(s.Auth.ClientToken)
	return c, nil
}

func TestVaultAppRole(t *testing.T) {
	v := NewVault(t, VaultOptions{})
	seedSecrets(t, v)
	roleID, secretID, err := v.EnableAppRole(t.Context(), "ferry", "read-app")
	if err != nil {
		t.Fatal(err)
	}
	c, err := login(t, v, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		t.Fatalf("approle login: %v", err)
	}
	checkReadAppOnly(t, c)

	// A second role reuses the enabled method.
	if _, _, err := v.EnableAppRole(t.Context(), "other", "default"); err != nil {
		t.Errorf("second EnableAppRole: %v", err)
	}
	if _, err := login(t, v, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": "wrong"}); err == nil {
		t.Error("approle login with a wrong secret id succeeded")
	}
}

func TestVaultKubernetesAuth(t *testing.T) {
	ctx := t.Context()
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "vault-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app", "other", "gone"} {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := kube.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	v := NewVault(t, VaultOptions{})
	seedSecrets(t, v)
	err = v.EnableKubernetesAuth(ctx, cp.Config, KubernetesAuthOptions{
		Roles: []KubernetesRole{{
			Name:            "app",
			ServiceAccounts: []string{"app", "gone"},
			Namespaces:      []string{ns.Name},
			Policies:        []string{"read-app"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	token := func(name string) string {
		t.Helper()
		jwt, err := ServiceAccountToken(ctx, kube, ns.Name, name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return jwt
	}
	kubeLogin := func(jwt string) (*vaultapi.Client, error) {
		t.Helper()
		return login(t, v, "auth/kubernetes/login", map[string]any{"role": "app", "jwt": jwt})
	}

	c, err := kubeLogin(token("app"))
	if err != nil {
		t.Fatalf("kubernetes login: %v", err)
	}
	checkReadAppOnly(t, c)

	// Refused by Vault itself: the role does not name this ServiceAccount.
	if _, err := kubeLogin(token("other")); !isRefusal(err, "service account name not authorized") {
		t.Errorf("kubernetes login as an unbound ServiceAccount: error = %v, want 403 service account name not authorized", err)
	}
	// Refused by the API server's TokenReview, which Vault reports as a bare "permission
	// denied": the claims match the role, but the signature is not the API server's...
	appJWT, otherJWT := token("app"), token("other")
	forged := appJWT[:strings.LastIndexByte(appJWT, '.')] + otherJWT[strings.LastIndexByte(otherJWT, '.'):]
	if _, err := kubeLogin(forged); !isRefusal(err, "permission denied") {
		t.Errorf("kubernetes login with a forged signature: error = %v, want 403 permission denied", err)
	}
	// ...or the ServiceAccount no longer exists.
	goneJWT := token("gone")
	if err := kube.CoreV1().ServiceAccounts(ns.Name).Delete(ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kubeLogin(goneJWT); !isRefusal(err, "permission denied") {
		t.Errorf("kubernetes login as a deleted ServiceAccount: error = %v, want 403 permission denied", err)
	}
}

// isRefusal reports whether err is a 403 whose only error message is msg.
func isRefusal(err error, msg string) bool {
	var re *vaultapi.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden && cmp.Equal(re.Errors, []string{msg})
}

func TestVaultBin(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vault")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(bin)
	home := t.TempDir()

	tests := []struct {
		name     string
		env      map[string]string
		want     string
		wantMiss bool
	}{
		{
			name: "FERRY_VAULT first",
			env:  map[string]string{"FERRY_VAULT": bin, "FERRY_VAULT_DIR": home},
			want: bin,
		},
		{
			name: "then FERRY_VAULT_DIR",
			env:  map[string]string{"FERRY_VAULT_DIR": dir, "FERRY_CACHE": home},
			want: bin,
		},
		{
			name:     "then FERRY_CACHE",
			env:      map[string]string{"FERRY_CACHE": home},
			want:     filepath.Join(home, "testbin", "vault-"+vaultVersion, "vault"),
			wantMiss: true,
		},
		{
			name:     "then the user cache",
			env:      map[string]string{"XDG_CACHE_HOME": home},
			want:     filepath.Join(home, "ferry", "testbin", "vault-"+vaultVersion, "vault"),
			wantMiss: true,
		},
		{
			name:     "missing file",
			env:      map[string]string{"FERRY_VAULT": filepath.Join(home, "vault")},
			want:     filepath.Join(home, "vault"),
			wantMiss: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"FERRY_VAULT", "FERRY_VAULT_DIR", "FERRY_CACHE", "XDG_CACHE_HOME"} {
				t.Setenv(k, tt.env[k])
			}
			got, err := VaultBin()
			if got != tt.want {
				t.Errorf("VaultBin() = %q, want %q", got, tt.want)
			}
			if miss := errors.Is(err, ErrNoVault); miss != tt.wantMiss {
				t.Errorf("VaultBin() error = %v, want ErrNoVault: %v", err, tt.wantMiss)
			}
			if !tt.wantMiss && err != nil {
				t.Errorf("VaultBin() error = %v", err)
			}
			if tt.wantMiss && err != nil && !strings.Contains(err.Error(), "make testbin") {
				t.Errorf("VaultBin() error = %v, want a hint to run make testbin", err)
			}
		})
	}
}

func TestStartVaultWithoutBinary(t *testing.T) {
	_, err := StartVault(t.Context(), VaultOptions{Bin: filepath.Join(t.TempDir(), "vault")})
	if !errors.Is(err, ErrNoVault) {
		t.Fatalf("StartVault error = %v, want ErrNoVault", err)
	}
}

func TestStartVaultQuotesLog(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vault")
	script := "#!/bin/sh\necho 'Error parsing listener configuration.' >&2\nexit 3\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	v, err := StartVault(ctx, VaultOptions{Bin: bin})
	if err == nil {
		_ = v.Stop()
		t.Fatal("StartVault with a crashing vault succeeded")
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("StartVault error = %v, want exit status 3", err)
	}
	if !strings.Contains(err.Error(), "Error parsing listener configuration.") {
		t.Errorf("StartVault error lacks the tail of the log:\n%v", err)
	}
}
