// Package vaultapps reads Vault for the delivery engine with the identity of each
// Application's namespace. It is apart from package vault so that ferry-exec, which links
// vault, does not link the Kubernetes client.
package vaultapps

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/secrets/ref"
	"github.com/ferrycd/ferry/internal/secrets/vault"
)

// Annotations on an Application that choose the Vault identity Ferry reads its secrets with.
const (
	// AnnotationRole is the Vault role of Kubernetes auth; default the configured role.
	AnnotationRole = "vault.ferry.dev/role"
	// AnnotationServiceAccount is the service account of the Application's namespace whose
	// token Ferry logs in with; default "default".
	AnnotationServiceAccount = "vault.ferry.dev/service-account"
)

// identityTTL is how long one login serves an identity, and tokenTTL the life of the
// service-account token requested for it (longer, so a re-login within the client works).
const (
	identityTTL = 30 * time.Minute
	tokenTTL    = time.Hour
)

// Apps reads Vault for the delivery engine with the identity of each Application's
// namespace. With Kubernetes auth it requests a token for a service account of that namespace
// (TokenRequest API) and logs in with it, so a Vault role bound to one namespace cannot be
// used through Ferry to read another's secrets. With AppRole or token auth every Application
// shares Ferry's own identity.
type Apps struct {
	base vault.Config
	kube kubernetes.Interface

	mu      sync.Mutex
	clients map[string]*appClient
}

type appClient struct {
	c       *vault.Client
	expires time.Time
}

// New returns an Apps that logs in as base says, with kube for service-account tokens.
func New(base vault.Config, kube kubernetes.Interface) *Apps {
	return &Apps{base: base, kube: kube, clients: map[string]*appClient{}}
}

// Resolve reads refs for app; see vault.Client.Resolve.
func (a *Apps) Resolve(ctx context.Context, app *v1alpha1.Application, refs []ref.Ref) (func(ref.Ref) (string, error), error) {
	c, err := a.client(ctx, app)
	if err != nil {
		return nil, err
	}
	values, err := c.Resolve(ctx, refs)
	if err != nil {
		return nil, err
	}
	return values.Lookup, nil
}

// Versions returns the KV version of each path, zero for KV version 1 paths.
func (a *Apps) Versions(ctx context.Context, app *v1alpha1.Application, paths []string) (map[string]int, error) {
	c, err := a.client(ctx, app)
	if err != nil {
		return nil, err
	}
	fps, err := c.Fingerprints(ctx, paths)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(fps))
	for p, fp := range fps {
		if v, ok := strings.CutPrefix(fp, "v"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				out[p] = n
				continue
			}
		}
		out[p] = 0 // KV version 1: no versions; its fingerprint is a digest of the data
	}
	return out, nil
}

// Close logs every identity out.
func (a *Apps) Close() error {
	a.mu.Lock()
	clients := a.clients
	a.clients = map[string]*appClient{}
	a.mu.Unlock()
	for _, c := range clients {
		_ = c.c.Close()
	}
	return nil
}

// client returns a logged-in client for app's identity, logging in when there is none or
// it is older than identityTTL.
func (a *Apps) client(ctx context.Context, app *v1alpha1.Application) (*vault.Client, error) {
	cfg := a.base
	key := "ferry"
	if cfg.Auth.EffectiveMethod() == vault.MethodKubernetes {
		sa := app.Annotations[AnnotationServiceAccount]
		if sa == "" {
			sa = "default"
		}
		if role := app.Annotations[AnnotationRole]; role != "" {
			cfg.Auth.Role = role
		}
		key = app.Namespace + "/" + sa + "/" + cfg.Auth.Role
		if c := a.cached(key); c != nil {
			return c, nil
		}
		jwt, err := a.serviceAccountToken(ctx, app.Namespace, sa)
		if err != nil {
			return nil, err
		}
		cfg.Auth.JWT, cfg.Auth.JWTFile = jwt, ""
	} else if c := a.cached(key); c != nil {
		return c, nil
	}
	c, err := vault.Login(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	old := a.clients[key]
	a.clients[key] = &appClient{c: c, expires: time.Now().Add(identityTTL)}
	a.mu.Unlock()
	if old != nil {
		// A reconcile may still be reading with it; log it out a little later.
		time.AfterFunc(time.Minute, func() { _ = old.c.Close() })
	}
	return c, nil
}

func (a *Apps) cached(key string) *vault.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clients[key]; c != nil && time.Now().Before(c.expires) {
		return c.c
	}
	return nil
}

// serviceAccountToken requests a token for namespace/name.
func (a *Apps) serviceAccountToken(ctx context.Context, namespace, name string) (string, error) {
	tr, err := a.kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(tokenTTL.Seconds()))},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("vault login: token for service account %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}
