package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferrycd/ferry/internal/secrets/ref"
	"github.com/ferrycd/ferry/internal/testenv"
)

// counter is an http.RoundTripper that counts the requests to Vault by method and path (with
// the query) and how many were in flight at once; delay slows each one down.
type counter struct {
	next  http.RoundTripper
	delay time.Duration

	mu                    sync.Mutex
	reqs                  map[string]int
	inFlight, maxInFlight int
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Method + " " + req.URL.Path
	if req.URL.RawQuery != "" {
		key += "?" + req.URL.RawQuery
	}
	c.mu.Lock()
	c.reqs[key]++
	c.inFlight++
	c.maxInFlight = max(c.maxInFlight, c.inFlight)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	return c.next.RoundTrip(req)
}

// take returns the counts so far and starts again.
func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reqs
	c.reqs = map[string]int{}
	c.maxInFlight = 0
	return r
}

// fixture is a Vault dev server with a root-token Config that counts requests.
type fixture struct {
	t     *testing.T
	v     *testenv.Vault
	count *counter
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, v: testenv.NewVault(t, testenv.VaultOptions{}), count: &counter{reqs: map[string]int{}}}
	return f
}

// config returns a Config of the server with auth, counting requests.
func (f *fixture) config(auth Auth) Config {
	return Config{
		Address:       f.v.Addr,
		Timeout:       10 * time.Second,
		Auth:          auth,
		wrapTransport: func(rt http.RoundTripper) http.RoundTripper { f.count.next = rt; return f.count },
	}
}

// root logs in with the root token.
func (f *fixture) root() *Client {
	f.t.Helper()
	c, err := Login(f.t.Context(), f.config(Auth{Token: f.v.RootToken}))
	if err != nil {
		f.t.Fatal(err)
	}
	f.count.take()
	return c
}

func (f *fixture) putV2(path string, data map[string]any) {
	f.t.Helper()
	if _, err := f.v.Client().KVv2("secret").Put(f.t.Context(), path, data); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) putV1(mount, path string, data map[string]any) {
	f.t.Helper()
	if err := f.v.Client().KVv1(mount).Put(f.t.Context(), path, data); err != nil {
		f.t.Fatal(err)
	}
}

// writeFile writes content to a new file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cred")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseRefs(t *testing.T, values ...string) []ref.Ref {
	t.Helper()
	var refs []ref.Ref
	for _, v := range values {
		tmpl, err := ref.Parse(v)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, tmpl.Refs()...)
	}
	return refs
}

// render resolves value with c.
func render(t *testing.T, c *Client, values ...string) []string {
	t.Helper()
	refs := parseRefs(t, values...)
	vals, err := c.Resolve(t.Context(), refs)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range values {
		tmpl, _ := ref.Parse(v)
		s, err := tmpl.Render(vals.Lookup)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// canary returns a value that appears nowhere unless leaked.
func canary() string { return "canary-" + rand.Text() }

func TestResolveKV2(t *testing.T) {
	f := newFixture(t)
	secret := canary()
	f.putV2("app/db", map[string]any{"password": "old", "user": "app"})
	f.putV2("app/db", map[string]any{
		"password": secret, "user": "app", "port": 5432, "ratio": 0.5, "tls": true, "none": nil,
		"nested": map[string]any{"b": "<&>", "a": []any{1, "x"}},
	})
	c := f.root()

	got := render(t, c,
		"vault:secret/app/db#password",
		"vault:secret/data/app/db#user",
		"postgres://${vault:secret/app/db#user}:${vault:secret/data/app/db#password}@db/app",
		"vault:secret/app/db#password#1",
		"vault:secret/data/app/db#password#2",
		"vault:secret/app/db#port",
		"vault:secret/app/db#ratio",
		"vault:secret/app/db#tls",
		"vault:secret/app/db#none",
		"vault:secret/app/db#nested",
	)
	want := []string{
		secret, "app", "postgres://app:" + secret + "@db/app", "old", secret,
		"5432", "0.5", "true", "null", `{"a":[1,"x"],"b":"<&>"}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	// With and without data/ are one secret: one lookup of the mount, one read of each
	// version asked for.
	wantReqs := map[string]int{
		"GET /v1/sys/internal/ui/mounts/secret/app/db": 1,
		"GET /v1/secret/data/app/db":                   1,
		"GET /v1/secret/data/app/db?version=1":         1,
		"GET /v1/secret/data/app/db?version=2":         1,
	}
	if diff := cmp.Diff(wantReqs, f.count.take()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	// The mount is known now.
	render(t, c, "vault:secret/app/db#user")
	if diff := cmp.Diff(map[string]int{"GET /v1/secret/data/app/db": 1}, f.count.take()); diff != "" {
		t.Errorf("requests of a second Resolve (-want +got):\n%s", diff)
	}

	vals, err := c.Resolve(t.Context(), parseRefs(t, "vault:secret/app/db#password"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(vals), fmt.Sprintf("%v %+v %#v %s", vals, vals, vals, vals)} {
		if strings.Contains(s, secret) {
			t.Errorf("formatting Values prints the secret: %s", s)
		}
	}
}

func TestResolveKV1(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if err := f.v.EnableKV1(ctx, "kv1"); err != nil {
		t.Fatal(err)
	}
	if err := f.v.EnableKV1(ctx, "team/kv"); err != nil {
		t.Fatal(err)
	}
	f.putV1("kv1", "app/api", map[string]any{"token": "abc", "n": 7})
	f.putV1("kv1", "data/x", map[string]any{"k": "under data/"})
	f.putV1("team/kv", "app", map[string]any{"k": "multi-segment mount"})
	c := f.root()

	got := render(t, c, "vault:kv1/app/api#token", "${vault:kv1/app/api#n}", "vault:kv1/data/x#k", "vault:team/kv/app#k")
	if diff := cmp.Diff([]string{"abc", "7", "under data/", "multi-segment mount"}, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	wantReqs := map[string]int{
		"GET /v1/sys/internal/ui/mounts/kv1/app/api": 1,
		"GET /v1/sys/internal/ui/mounts/team/kv/app": 1,
		"GET /v1/kv1/app/api":                        1,
		"GET /v1/kv1/data/x":                         1,
		"GET /v1/team/kv/app":                        1,
	}
	if diff := cmp.Diff(wantReqs, f.count.take()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	_, err := c.Resolve(ctx, parseRefs(t, "vault:kv1/app/api#token", "vault:kv1/app/api#token#2"))
	if !errors.Is(err, ErrUnsupported) || err.Error() != "vault:kv1/app/api#token#2: unsupported: kv1/ is a KV version 1 mount, which keeps no versions" {
		t.Errorf("Resolve of a version of a KV v1 secret: error = %v", err)
	}
}

func TestResolveOneReadPerPath(t *testing.T) {
	for _, tt := range []struct{ refs, paths int }{{1, 1}, {10, 5}, {50, 5}, {50, 20}} {
		t.Run(fmt.Sprintf("%d refs over %d paths", tt.refs, tt.paths), func(t *testing.T) {
			f := newFixture(t)
			for p := range tt.paths {
				f.putV2(fmt.Sprintf("app/s%d", p), map[string]any{"k0": "a", "k1": "b"})
			}
			c := f.root()
			var values []string
			for i := range tt.refs {
				p := i % tt.paths
				if i%2 == 0 { // half spell out data/
					values = append(values, fmt.Sprintf("vault:secret/data/app/s%d#k%d", p, i%3%2))
				} else {
					values = append(values, fmt.Sprintf("vault:secret/app/s%d#k%d", p, i%3%2))
				}
			}
			render(t, c, values...)
			reqs := f.count.take()
			mounts, reads := 0, map[string]int{}
			for k, n := range reqs {
				if strings.Contains(k, "/sys/internal/ui/mounts/") {
					mounts += n
				} else {
					reads[k] = n
				}
			}
			if mounts != 1 {
				t.Errorf("%d mount lookups, want 1: %v", mounts, reqs)
			}
			if len(reads) != tt.paths {
				t.Errorf("%d paths read, want %d: %v", len(reads), tt.paths, reqs)
			}
			for k, n := range reads {
				if n != 1 {
					t.Errorf("%s read %d times, want once", k, n)
				}
			}
		})
	}
}

func TestResolveParallel(t *testing.T) {
	f := newFixture(t)
	const paths = 40
	var values []string
	for p := range paths {
		f.putV2(fmt.Sprintf("app/s%d", p), map[string]any{"k": fmt.Sprint(p)})
		values = append(values, fmt.Sprintf("vault:secret/app/s%d#k", p))
	}
	c := f.root()
	f.count.delay = 100 * time.Millisecond
	start := time.Now()
	got := render(t, c, values...)
	took := time.Since(start)
	for p, v := range got {
		if v != fmt.Sprint(p) {
			t.Errorf("%s = %q", values[p], v)
		}
	}
	f.count.mu.Lock()
	maxInFlight := f.count.maxInFlight
	f.count.mu.Unlock()
	t.Logf("%d reads of %v each took %v, at most %d at once", paths, f.count.delay, took, maxInFlight)
	if maxInFlight != maxParallel {
		t.Errorf("at most %d requests at once, want %d", maxInFlight, maxParallel)
	}
	// Serial reads would take 4s and more.
	if took > paths*f.count.delay/2 {
		t.Errorf("Resolve took %v: not parallel", took)
	}
}

func TestResolveErrors(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	secret := canary()
	f.putV2("app/db", map[string]any{"password": secret, "user": "app"})
	f.putV2("app/deleted", map[string]any{"k": secret})
	f.putV2("app/deleted", map[string]any{"k": secret})
	kv := f.v.Client().KVv2("secret")
	if err := kv.Delete(ctx, "app/deleted"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Destroy(ctx, "app/deleted", []int{1}); err != nil {
		t.Fatal(err)
	}
	c := f.root()

	tests := []struct {
		refs    []string
		wantErr error
		want    string
	}{
		{
			refs:    []string{"vault:secret/app/db#user", "vault:secret/nope#pw"},
			wantErr: ErrNotFound,
			want:    "vault:secret/nope#pw: no secret at secret/data/nope",
		},
		{
			refs:    []string{"vault:secret/app/db#user", "vault:secret/app/db#passwd"},
			wantErr: ErrNoKey,
			want:    `vault:secret/app/db#passwd: no key "passwd" in the secret at secret/data/app/db`,
		},
		{
			refs:    []string{"vault:secret/app/db#user#9"},
			wantErr: ErrNotFound,
			want:    "vault:secret/app/db#user#9: no secret at secret/data/app/db, version 9",
		},
		{
			refs:    []string{"vault:secret/app/db#user#1", "vault:secret/app/db#passwd#1"},
			wantErr: ErrNoKey,
			want:    `vault:secret/app/db#passwd#1: no key "passwd" in the secret at secret/data/app/db, version 1`,
		},
		{
			refs:    []string{"vault:secret/app/deleted#k"},
			wantErr: ErrNotFound,
			want:    "vault:secret/app/deleted#k: no secret at secret/data/app/deleted, version 2: it is deleted",
		},
		{
			refs:    []string{"vault:secret/app/deleted#k#1"},
			wantErr: ErrNotFound,
			want:    "vault:secret/app/deleted#k#1: no secret at secret/data/app/deleted, version 1: it is destroyed",
		},
		{
			refs:    []string{"vault:secret#k"},
			wantErr: ErrNotFound,
			want:    "vault:secret#k: no secret at secret: that is the mount secret/ itself",
		},
		{
			refs:    []string{"vault:cubbyhole/x#k"},
			wantErr: ErrUnsupported,
			want:    "vault:cubbyhole/x#k: unsupported: cubbyhole/x is in the cubbyhole secrets engine mounted at cubbyhole/; only KV is supported",
		},
		{
			refs:    []string{"vault:nomount/x#k"},
			wantErr: ErrPermissionDenied,
			want:    "vault:nomount/x#k: permission denied on nomount/x (or no secrets engine is mounted there)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			refs := parseRefs(t, tt.refs...)
			vals, err := c.Resolve(ctx, refs)
			if vals != nil {
				t.Errorf("Resolve returned values with error %v", err)
			}
			var re *Error
			if !errors.As(err, &re) || re.Ref != refs[len(refs)-1] {
				t.Errorf("error %v is not an *Error of the reference %v", err, refs[len(refs)-1])
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant    %s", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error holds the secret value: %v", err)
			}
		})
	}

	// Lookup of a reference Resolve was not given.
	vals, err := c.Resolve(ctx, parseRefs(t, "vault:secret/app/db#user"))
	if err != nil {
		t.Fatal(err)
	}
	for r, want := range map[string]string{
		"vault:secret/app/db#nokey":  `no key "nokey" in the secret at secret/data/app/db`,
		"vault:secret/other#k":       "secret/other was not resolved",
		"vault:secret/app/db#user#1": "version 1 of secret/data/app/db was not resolved",
	} {
		_, err := vals.Lookup(parseRefs(t, r)[0])
		if err == nil || err.Error() != want {
			t.Errorf("Lookup(%s) error = %v, want %s", r, err, want)
		}
	}
}

func TestLoginToken(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.putV2("app/db", map[string]any{"password": "pw"})

	for name, auth := range map[string]Auth{
		"token":              {Token: f.v.RootToken},
		"token file":         {TokenFile: writeFile(t, f.v.RootToken)},
		"explicit method":    {Method: MethodToken, TokenFile: writeFile(t, f.v.RootToken)},
		"token wins the jwt": {Token: f.v.RootToken, JWTFile: "/nonexistent"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Login(ctx, f.config(auth))
			if err != nil {
				t.Fatal(err)
			}
			if got := render(t, c, "vault:secret/app/db#password"); got[0] != "pw" {
				t.Errorf("value = %q", got[0])
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			// A token given is not revoked.
			if _, err := f.v.Client().Auth().Token().LookupWithContext(ctx, f.v.RootToken); err != nil {
				t.Errorf("the given token is gone after Close: %v", err)
			}
		})
	}

	bad := canary()
	_, err := Login(ctx, f.config(Auth{Token: bad}))
	if !errors.Is(err, ErrPermissionDenied) || err.Error() != "vault login (token): permission denied: invalid token" {
		t.Errorf("Login with a bad token: error = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), bad) {
		t.Errorf("error holds the token: %v", err)
	}
	_, err = Login(ctx, f.config(Auth{TokenFile: filepath.Join(t.TempDir(), "absent")}))
	if err == nil || !strings.HasPrefix(err.Error(), "vault login (token): read token: open ") {
		t.Errorf("Login with a missing token file: error = %v", err)
	}
	_, err = Login(ctx, f.config(Auth{TokenFile: writeFile(t, "")}))
	if err == nil || !strings.HasSuffix(err.Error(), " is empty") {
		t.Errorf("Login with an empty token file: error = %v", err)
	}
}

// readAppPolicy may read the KV v2 secrets under secret/app/ and nothing else.
const readAppPolicy = `path "secret/data/app/*" { capabilities = ["read"] }`

func TestLoginAppRole(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	allowed, forbidden := canary(), canary()
	f.putV2("app/db", map[string]any{"password": allowed})
	f.putV2("other/db", map[string]any{"password": forbidden})
	if err := f.v.PutPolicy(ctx, "read-app", readAppPolicy); err != nil {
		t.Fatal(err)
	}
	roleID, secretID, err := f.v.EnableAppRole(ctx, "app", "read-app")
	if err != nil {
		t.Fatal(err)
	}
	auth := Auth{Method: MethodAppRole, RoleIDFile: writeFile(t, roleID), SecretIDFile: writeFile(t, secretID)}
	c, err := Login(ctx, f.config(auth))
	if err != nil {
		t.Fatal(err)
	}
	if got := render(t, c, "vault:secret/app/db#password"); got[0] != allowed {
		t.Errorf("value = %q", got[0])
	}

	// A token revoked under the client's feet: it logs in again.
	revoked := c.token()
	if err := f.v.Client().Auth().Token().RevokeTreeWithContext(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	if got := render(t, c, "vault:secret/app/db#password"); got[0] != allowed {
		t.Errorf("value after revocation = %q", got[0])
	}
	if c.token() == revoked {
		t.Error("the client still has the revoked token")
	}

	// Denied by policy: the mount lookup passes (the token may read under secret/), the read
	// does not.
	_, err = c.Resolve(ctx, parseRefs(t, "vault:secret/app/db#password", "vault:secret/other/db#password"))
	want := "vault:secret/other/db#password: permission denied to read secret/data/other/db"
	if !errors.Is(err, ErrPermissionDenied) || err.Error() != want {
		t.Errorf("Resolve of a forbidden secret: error = %v\nwant %s", err, want)
	}
	// A mount the token may not touch at all.
	if err := f.v.EnableKV1(ctx, "kv1"); err != nil {
		t.Fatal(err)
	}
	f.putV1("kv1", "x", map[string]any{"k": forbidden})
	_, err = c.Resolve(ctx, parseRefs(t, "vault:kv1/x#k"))
	if !errors.Is(err, ErrPermissionDenied) || !strings.HasPrefix(err.Error(), "vault:kv1/x#k: permission denied") {
		t.Errorf("Resolve in a forbidden mount: error = %v", err)
	}
	for _, s := range []string{allowed, forbidden, secretID} {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks %q: %v", s, err)
		}
	}

	// Close revokes the token of the login.
	token := c.token()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := f.v.Client().Auth().Token().LookupWithContext(ctx, token); err == nil {
		t.Error("the login's token outlives Close")
	}

	// A wrong secret ID, and a mount path of its own.
	wrong := canary()
	_, err = Login(ctx, f.config(Auth{Method: MethodAppRole, RoleID: roleID, SecretID: wrong}))
	if err == nil || !strings.HasPrefix(err.Error(), "vault login (approle): ") {
		t.Errorf("Login with a wrong secret ID: error = %v", err)
	} else if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), roleID) {
		t.Errorf("error leaks a credential: %v", err)
	}
	t.Logf("wrong secret ID: %v", err)
	_, err = Login(ctx, f.config(Auth{Method: MethodAppRole, MountPath: "other", RoleID: roleID, SecretID: secretID}))
	if err == nil || !strings.HasPrefix(err.Error(), "vault login (approle at auth/other): ") {
		t.Errorf("Login at an unused mount: error = %v", err)
	}
	t.Logf("unused mount: %v", err)
}

func TestLoginKubernetes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	plane, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := plane.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	kube, err := kubernetes.NewForConfig(plane.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := "vault-login"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app", "other"} {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	f := newFixture(t)
	f.putV2("app/db", map[string]any{"password": "from-kubernetes"})
	if err := f.v.PutPolicy(ctx, "read-app", readAppPolicy); err != nil {
		t.Fatal(err)
	}
	err = f.v.EnableKubernetesAuth(ctx, plane.Config, testenv.KubernetesAuthOptions{
		Mount: "k8s",
		Roles: []testenv.KubernetesRole{{Name: "app", ServiceAccounts: []string{"app"}, Namespaces: []string{ns}, Policies: []string{"read-app"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	jwt := func(name string) string {
		t.Helper()
		tok, err := testenv.ServiceAccountToken(ctx, kube, ns, name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	appJWT := jwt("app")
	c, err := Login(ctx, f.config(Auth{Role: "app", MountPath: "k8s", JWTFile: writeFile(t, appJWT)}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := render(t, c, "vault:secret/app/db#password"); got[0] != "from-kubernetes" {
		t.Errorf("value = %q", got[0])
	}

	otherJWT := jwt("other")
	_, err = Login(ctx, f.config(Auth{Role: "app", MountPath: "k8s", JWT: otherJWT}))
	want := "vault login (kubernetes at auth/k8s, role app): permission denied: service account name not authorized"
	if !errors.Is(err, ErrPermissionDenied) || err == nil || err.Error() != want {
		t.Errorf("Login as an unbound ServiceAccount: error = %v\nwant %s", err, want)
	}
	forged := appJWT[:strings.LastIndexByte(appJWT, '.')] + otherJWT[strings.LastIndexByte(otherJWT, '.'):]
	_, err = Login(ctx, f.config(Auth{Role: "app", MountPath: "k8s", JWT: forged}))
	want = "vault login (kubernetes at auth/k8s, role app): permission denied"
	if err == nil || err.Error() != want {
		t.Errorf("Login with a forged token: error = %v\nwant %s", err, want)
	}
	_, err = Login(ctx, f.config(Auth{Role: "app", MountPath: "k8s", JWTFile: filepath.Join(t.TempDir(), "token")}))
	if err == nil || !strings.HasPrefix(err.Error(), "vault login (kubernetes at auth/k8s, role app): read ServiceAccount token: open ") {
		t.Errorf("Login without a token file: error = %v", err)
	}
	_, err = Login(ctx, f.config(Auth{Role: "nope", MountPath: "k8s", JWT: appJWT}))
	if err == nil || !strings.HasPrefix(err.Error(), "vault login (kubernetes at auth/k8s, role nope): ") {
		t.Errorf("Login with an unknown role: error = %v", err)
	}
	t.Logf("unknown role: %v", err)
	for _, tok := range []string{appJWT, otherJWT, forged} {
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("error holds a JWT: %v", err)
		}
	}
}

func TestVaultDown(t *testing.T) {
	f := newFixture(t)
	f.putV2("app/db", map[string]any{"password": "pw"})
	c := f.root()
	if err := f.v.Stop(); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err := c.Resolve(t.Context(), parseRefs(t, "vault:secret/app/db#password"))
	took := time.Since(start)
	t.Logf("Resolve failed after %v: %v", took, err)
	want := fmt.Sprintf("vault:secret/app/db#password: cannot reach Vault at %s: dial tcp %s: connect: connection refused (3 attempts)",
		f.v.Addr, strings.TrimPrefix(f.v.Addr, "http://"))
	if !errors.Is(err, ErrUnreachable) || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
	if took > 10*time.Second {
		t.Errorf("Resolve took %v to fail", took)
	}
	if n := f.count.take()["GET /v1/sys/internal/ui/mounts/secret/app/db"]; n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}

	cfg := f.config(Auth{Token: "t"})
	cfg.MaxRetries = -1
	start = time.Now()
	_, err = Login(t.Context(), cfg)
	t.Logf("Login failed after %v: %v", time.Since(start), err)
	if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "vault login (token): cannot reach Vault at ") ||
		strings.Contains(err.Error(), "attempts") {
		t.Errorf("Login error = %v", err)
	}
}

func TestVaultSlow(t *testing.T) {
	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	addr := "http://" + l.Addr().String()
	start := time.Now()
	_, err = Login(t.Context(), Config{Address: addr, Timeout: 500 * time.Millisecond, Auth: Auth{Token: "t"}})
	took := time.Since(start)
	t.Logf("Login failed after %v: %v", took, err)
	want := "vault login (token): cannot reach Vault at " + addr + ": no answer within 500ms"
	if !errors.Is(err, ErrUnreachable) || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
	if took > 5*time.Second {
		t.Errorf("Login took %v", took)
	}
}

func TestFingerprints(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if err := f.v.EnableKV1(ctx, "kv1"); err != nil {
		t.Fatal(err)
	}
	secret := canary()
	f.putV2("app/db", map[string]any{"password": secret})
	f.putV1("kv1", "app", map[string]any{"password": secret, "n": 1})
	c := f.root()
	paths := []string{"secret/app/db", "secret/data/app/db", "kv1/app"}

	fp1, err := c.Fingerprints(ctx, paths)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fingerprints: %v", fp1)
	if fp1["secret/app/db"] != "v1" || fp1["secret/data/app/db"] != "v1" || len(fp1["kv1/app"]) != 64 {
		t.Errorf("fingerprints = %v", fp1)
	}
	if diff := cmp.Diff(map[string]int{
		"GET /v1/sys/internal/ui/mounts/secret/app/db": 1,
		"GET /v1/sys/internal/ui/mounts/kv1/app":       1,
		"GET /v1/secret/data/app/db":                   1,
		"GET /v1/kv1/app":                              1,
	}, f.count.take()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	for _, fp := range fp1 {
		if strings.Contains(fp, secret) {
			t.Errorf("fingerprint holds the secret")
		}
	}
	// Resolve records the same.
	vals, err := c.Resolve(ctx, parseRefs(t, "vault:secret/app/db#password", "vault:secret/data/app/db#password",
		"vault:kv1/app#password", "vault:secret/app/db#password#1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if got, ok := vals.Fingerprint(p); !ok || got != fp1[p] {
			t.Errorf("Values.Fingerprint(%s) = %q, %v; want %q", p, got, ok, fp1[p])
		}
	}

	// Unchanged: the same. The same data written again to KV v1: the same.
	f.putV1("kv1", "app", map[string]any{"n": 1, "password": secret})
	fp2, err := c.Fingerprints(ctx, paths)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fp1, fp2); diff != "" {
		t.Errorf("fingerprints changed without a change (-before +after):\n%s", diff)
	}

	f.putV2("app/db", map[string]any{"password": secret})
	f.putV1("kv1", "app", map[string]any{"password": secret, "n": 2})
	fp3, err := c.Fingerprints(ctx, paths)
	if err != nil {
		t.Fatal(err)
	}
	if fp3["secret/app/db"] != "v2" || fp3["kv1/app"] == fp1["kv1/app"] {
		t.Errorf("fingerprints after writes = %v, before %v", fp3, fp1)
	}

	_, err = c.Fingerprints(ctx, []string{"secret/app/db", "secret/nope"})
	var pe *PathError
	if !errors.As(err, &pe) || pe.Path != "secret/nope" || !errors.Is(err, ErrNotFound) ||
		err.Error() != "secret/nope: no secret at secret/data/nope" {
		t.Errorf("Fingerprints of a missing secret: error = %v", err)
	}
}

func TestRenewal(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.putV2("app/db", map[string]any{"password": "pw"})
	if err := f.v.PutPolicy(ctx, "read-app", readAppPolicy); err != nil {
		t.Fatal(err)
	}
	roleID, secretID, err := f.v.EnableAppRole(ctx, "short", "read-app")
	if err != nil {
		t.Fatal(err)
	}
	// Tokens that live 3 seconds, renewable up to 6. (Vault rounds the TTLs it reports up
	// to whole seconds, so a token may expire before the watcher expects; the client logs
	// in again when Vault calls its token invalid.)
	_, err = f.v.Client().Logical().WriteWithContext(ctx, "auth/approle/role/short", map[string]any{
		"token_ttl": "3s", "token_max_ttl": "6s",
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Login(ctx, f.config(Auth{Method: MethodAppRole, RoleID: roleID, SecretIDFile: writeFile(t, secretID)}))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []error
	c.StartRenewal(ctx, func(err error) {
		mu.Lock()
		reports = append(reports, err)
		mu.Unlock()
	})
	c.StartRenewal(ctx, nil) // a second call does nothing
	first := c.token()

	// Past the first token's max TTL, the client has logged in again and reads.
	start := time.Now()
	for time.Since(start) < 13*time.Second {
		if _, err := c.Resolve(ctx, parseRefs(t, "vault:secret/app/db#password")); err != nil {
			t.Fatalf("Resolve %v after login: %v", time.Since(start), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if c.token() == first {
		t.Error("the client never logged in again")
	}
	reqs := f.count.take()
	t.Logf("requests: %v", reqs)
	if reqs["PUT /v1/auth/token/renew-self"] == 0 {
		t.Error("the client never renewed its token")
	}
	if reqs["PUT /v1/auth/approle/login"] == 0 {
		t.Error("the client never logged in again")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) > 0 {
		t.Errorf("renewal reported errors: %v", reports)
	}

	// A renewable token given with VAULT_TOKEN is renewed.
	s, err := f.v.Client().Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
		Policies: []string{"read-app"}, TTL: "2s", ExplicitMaxTTL: "1h",
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err = Login(ctx, f.config(Auth{Token: s.Auth.ClientToken}))
	if err != nil {
		t.Fatal(err)
	}
	c.StartRenewal(ctx, func(err error) { t.Errorf("renewal: %v", err) })
	time.Sleep(5 * time.Second)
	if _, err := c.Resolve(ctx, parseRefs(t, "vault:secret/app/db#password")); err != nil {
		t.Errorf("Resolve after the token's first TTL: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	tests := []struct {
		name    string
		env     func(string) (string, bool)
		want    Config
		wantErr string
	}{
		{
			name: "kubernetes by default",
			env:  env("VAULT_ADDR", "https://vault:8200", "FERRY_VAULT_ROLE", "app", "FERRY_VAULT_AUTH_PATH", "k8s-prod"),
			want: Config{Address: "https://vault:8200", Auth: Auth{Role: "app", MountPath: "k8s-prod"}},
		},
		{
			name: "everything",
			env: env("VAULT_ADDR", "https://vault:8200", "VAULT_NAMESPACE", "team",
				"VAULT_CACERT", "/ca.pem", "VAULT_CACERT_BYTES", "PEM", "VAULT_CAPATH", "/cas", "VAULT_CLIENT_CERT", "/c.pem",
				"VAULT_CLIENT_KEY", "/k.pem", "VAULT_TLS_SERVER_NAME", "vault.internal", "VAULT_SKIP_VERIFY", "true",
				"VAULT_CLIENT_TIMEOUT", "5", "VAULT_MAX_RETRIES", "4",
				"FERRY_VAULT_AUTH_METHOD", "approle", "FERRY_VAULT_ROLE_ID_FILE", "/role-id", "FERRY_VAULT_SECRET_ID_FILE", "/secret-id",
				"FERRY_VAULT_JWT_FILE", "/jwt", "FERRY_VAULT_ROLE_ID", "rid", "FERRY_VAULT_ROLE", "r"),
			want: Config{
				Address: "https://vault:8200", Namespace: "team",
				TLS: TLSConfig{
					CACert: "/ca.pem", CACertBytes: []byte("PEM"), CAPath: "/cas", ClientCert: "/c.pem", ClientKey: "/k.pem",
					TLSServerName: "vault.internal", Insecure: true,
				},
				Timeout: 5 * time.Second, MaxRetries: 4,
				Auth: Auth{
					Method: "approle", Role: "r", JWTFile: "/jwt", RoleID: "rid", RoleIDFile: "/role-id", SecretIDFile: "/secret-id",
				},
			},
		},
		{
			name: "token from VAULT_TOKEN, no retries, a duration",
			env:  env("VAULT_ADDR", "http://v", "VAULT_TOKEN", "s.x", "VAULT_MAX_RETRIES", "0", "VAULT_CLIENT_TIMEOUT", "1m30s"),
			want: Config{Address: "http://v", Timeout: 90 * time.Second, MaxRetries: -1, Auth: Auth{Token: "s.x"}},
		},
		{
			name: "token file",
			env:  env("VAULT_ADDR", "http://v", "VAULT_TOKEN_FILE", "/t", "VAULT_SKIP_VERIFY", ""),
			want: Config{Address: "http://v", Auth: Auth{TokenFile: "/t"}},
		},
		{name: "no address", env: env("VAULT_TOKEN", "t"), wantErr: "vault configuration: no Vault address (set VAULT_ADDR)"},
		{
			name:    "no role",
			env:     env("VAULT_ADDR", "http://v"),
			wantErr: "vault configuration: the kubernetes auth method needs a role (set FERRY_VAULT_ROLE)",
		},
		{
			name:    "approle without role ID",
			env:     env("VAULT_ADDR", "http://v", "FERRY_VAULT_AUTH_METHOD", "approle"),
			wantErr: "vault configuration: the approle auth method needs a role ID (set FERRY_VAULT_ROLE_ID_FILE or FERRY_VAULT_ROLE_ID)",
		},
		{
			name:    "token method without token",
			env:     env("VAULT_ADDR", "http://v", "FERRY_VAULT_AUTH_METHOD", "token"),
			wantErr: "vault configuration: the token auth method needs a token (set VAULT_TOKEN_FILE or VAULT_TOKEN)",
		},
		{
			name:    "unknown method",
			env:     env("VAULT_ADDR", "http://v", "FERRY_VAULT_AUTH_METHOD", "ldap"),
			wantErr: `vault configuration: auth method "ldap": want kubernetes, approle or token`,
		},
		{
			name: "bad numbers",
			env: env("VAULT_ADDR", "http://v", "VAULT_TOKEN", "t", "VAULT_SKIP_VERIFY", "maybe",
				"VAULT_CLIENT_TIMEOUT", "-3s", "VAULT_MAX_RETRIES", "many"),
			wantErr: `vault configuration: VAULT_SKIP_VERIFY="maybe": want true or false` + "\n" +
				`VAULT_CLIENT_TIMEOUT="-3s": want seconds or a duration such as 30s` + "\n" +
				`VAULT_MAX_RETRIES="many": want a number of retries`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(tt.env)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("error = %v\nwant    %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(Config{}), cmp.Comparer(func(a, b func(http.RoundTripper) http.RoundTripper) bool {
				return a == nil && b == nil
			})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProcessEnvIgnored proves the client follows its Config, not the VAULT_* variables the
// api package reads on its own.
func TestProcessEnvIgnored(t *testing.T) {
	f := newFixture(t)
	f.putV2("app/db", map[string]any{"password": "pw"})
	t.Setenv("VAULT_TOKEN", "bogus")
	t.Setenv("VAULT_NAMESPACE", "nope")
	t.Setenv("VAULT_HEADERS", `{"X-Test":"1"}`)
	t.Setenv("VAULT_AGENT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	c := f.root()
	if got := render(t, c, "vault:secret/app/db#password"); got[0] != "pw" {
		t.Errorf("value = %q", got[0])
	}
}
