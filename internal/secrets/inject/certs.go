package inject

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Defaults of CertSettings.
const (
	DefaultSecretName       = "ferry-webhook-tls"
	DefaultValidity         = 365 * 24 * time.Hour
	DefaultRenewBefore      = 30 * 24 * time.Hour
	DefaultResyncInterval   = time.Minute
	DefaultPropagationDelay = 30 * time.Second
)

// Keys of the Secret. tls.crt and tls.key make it a kubernetes.io/tls Secret; ca.crt holds
// every CA the webhook configuration is to trust, the newest first.
const (
	secretCert   = corev1.TLSCertKey
	secretKey    = corev1.TLSPrivateKeyKey
	secretBundle = "ca.crt"
)

// maxBundle is the most CA certificates the caBundle keeps: the current one and those of
// certificates replicas may still serve.
const maxBundle = 4

// CertSettings tune a CertManager; the zero value of each field means its default.
type CertSettings struct {
	// DNSNames and IPAddresses are added to the serving certificate's names, which always
	// are SERVICE, SERVICE.NAMESPACE and SERVICE.NAMESPACE.svc.
	DNSNames    []string
	IPAddresses []net.IP
	// Validity of the CA and the serving certificate, issued together (DefaultValidity).
	Validity time.Duration
	// RenewBefore is how long before the serving certificate expires a new one replaces it
	// (DefaultRenewBefore). It must be shorter than Validity.
	RenewBefore time.Duration
	// ResyncInterval is how often the manager reads the Secret, to pick up what other
	// replicas did, and the webhook configuration, to repair its caBundle
	// (DefaultResyncInterval).
	ResyncInterval time.Duration
	// PropagationDelay is how long after putting a new CA into the caBundle the manager keeps
	// serving the old, still valid certificate, so that every API server trusts the new one
	// before it is served (DefaultPropagationDelay; negative means no delay).
	PropagationDelay time.Duration
}

// CertOptions configures a CertManager.
type CertOptions struct {
	// Client reads and writes the Secret and patches the webhook configuration.
	Client kubernetes.Interface
	// Logger receives what the manager does; nil discards.
	Logger *slog.Logger
	// Namespace is Ferry's, which holds the Secret and the Service.
	Namespace string
	// SecretName is the Secret the replicas share the certificate through
	// (DefaultSecretName).
	SecretName string
	// ServiceName is the Service in front of the webhook.
	ServiceName string
	// WebhookConfigName is the MutatingWebhookConfiguration whose caBundle the manager
	// keeps; empty means none.
	WebhookConfigName string

	CertSettings
}

// CertManager keeps the webhook's serving certificate: it creates a self-signed CA and a
// serving certificate in a Secret unless a valid one is there, replaces them when they near
// their expiry, serves the Secret's certificate (GetCertificate), and keeps the CA in the
// caBundle of the webhook configuration. Replicas share the Secret; its resourceVersion
// settles their races. The CA's key is never stored: each renewal makes a new CA.
type CertManager struct {
	opts  CertOptions
	names []string // DNS names and IP addresses the certificate must be valid for
	log   *slog.Logger

	current atomic.Pointer[tls.Certificate]

	mu      sync.Mutex // serializes Sync
	pending []byte     // tls.crt of a certificate waiting for PropagationDelay
	since   time.Time  // when pending was first seen with its CA in the caBundle
	missing bool       // the webhook configuration was missing at the last look
}

// NewCertManager checks opts and returns a manager; Run (or Sync) does the work.
func NewCertManager(opts CertOptions) (*CertManager, error) {
	switch {
	case opts.Client == nil:
		return nil, errors.New("inject: CertOptions.Client is required")
	case opts.Namespace == "":
		return nil, errors.New("inject: CertOptions.Namespace is required")
	case opts.ServiceName == "":
		return nil, errors.New("inject: CertOptions.ServiceName is required")
	}
	if opts.SecretName == "" {
		opts.SecretName = DefaultSecretName
	}
	if opts.Validity <= 0 {
		opts.Validity = DefaultValidity
	}
	if opts.RenewBefore <= 0 {
		opts.RenewBefore = DefaultRenewBefore
	}
	if opts.RenewBefore >= opts.Validity {
		return nil, fmt.Errorf("inject: RenewBefore %v must be shorter than Validity %v", opts.RenewBefore, opts.Validity)
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	switch {
	case opts.PropagationDelay == 0:
		opts.PropagationDelay = DefaultPropagationDelay
	case opts.PropagationDelay < 0:
		opts.PropagationDelay = 0
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &CertManager{opts: opts, log: log.With("secret", opts.Namespace+"/"+opts.SecretName)}
	svc := opts.ServiceName
	m.names = []string{svc, svc + "." + opts.Namespace, svc + "." + opts.Namespace + ".svc"}
	for _, n := range opts.DNSNames {
		if !slices.Contains(m.names, n) {
			m.names = append(m.names, n)
		}
	}
	for _, ip := range opts.IPAddresses {
		m.names = append(m.names, ip.String())
	}
	return m, nil
}

// GetCertificate returns the certificate being served, for tls.Config.GetCertificate.
func (m *CertManager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.current.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no webhook serving certificate yet")
}

// TLSConfig returns a server configuration that serves the current certificate.
func (m *CertManager) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: m.GetCertificate}
}

// Ready reports whether a certificate is being served.
func (m *CertManager) Ready() bool { return m.current.Load() != nil }

// Run keeps the certificate and the caBundle until ctx ends, syncing every ResyncInterval and
// retrying failures sooner. It returns nil when ctx ends.
func (m *CertManager) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		wait := m.opts.ResyncInterval
		if err := m.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.log.Warn("webhook certificate sync failed; retrying", "error", err, "in", backoff)
			wait = min(backoff, wait)
			backoff = min(2*backoff, m.opts.ResyncInterval)
		} else {
			backoff = time.Second
			if d := m.pendingIn(); d > 0 {
				wait = min(wait, d)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// pendingIn is how long until a pending certificate is due to be served, or 0.
func (m *CertManager) pendingIn() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == nil {
		return 0
	}
	return max(time.Until(m.since.Add(m.opts.PropagationDelay)), time.Millisecond)
}

// Sync makes one pass: it reads the Secret, creating or renewing the certificate if needed,
// puts its CAs into the caBundle of the webhook configuration, and serves the certificate,
// after PropagationDelay if it replaces a valid one.
func (m *CertManager) Sync(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	kp, err := m.ensureSecret(ctx)
	if err != nil {
		return err
	}
	if err := m.ensureBundle(ctx, kp.bundle); err != nil {
		if m.current.Load() == nil {
			// Serving something beats serving nothing; the caBundle comes later.
			m.serve(kp)
		}
		return err
	}
	m.swap(kp)
	return nil
}

// keyPair is the Secret's content, parsed.
type keyPair struct {
	certPEM []byte
	cert    tls.Certificate // with Leaf
	bundle  []byte
}

// ensureSecret returns the Secret's certificate, after creating or renewing it if needed.
func (m *CertManager) ensureSecret(ctx context.Context) (*keyPair, error) {
	secrets := m.opts.Client.CoreV1().Secrets(m.opts.Namespace)
	const attempts = 3
	for range attempts {
		secret, err := secrets.Get(ctx, m.opts.SecretName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			kp, data, err := m.issue(nil)
			if err != nil {
				return nil, err
			}
			secret = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{
					Name:      m.opts.SecretName,
					Namespace: m.opts.Namespace,
					Labels:    map[string]string{"app.kubernetes.io/managed-by": "ferry"},
				},
				Type: corev1.SecretTypeTLS,
				Data: data,
			}
			_, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // another replica was faster
			}
			if err != nil {
				return nil, fmt.Errorf("create secret %s/%s: %w", m.opts.Namespace, m.opts.SecretName, err)
			}
			m.log.Info("webhook certificate created", "not_after", kp.cert.Leaf.NotAfter)
			return kp, nil
		case err != nil:
			return nil, fmt.Errorf("get secret %s/%s: %w", m.opts.Namespace, m.opts.SecretName, err)
		}

		kp, reason := m.check(secret.Data)
		if reason == "" {
			return kp, nil
		}
		kp, data, err := m.issue(secret.Data[secretBundle])
		if err != nil {
			return nil, err
		}
		secret = secret.DeepCopy()
		secret.Data = data
		_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue // another replica renewed it
		}
		if err != nil {
			return nil, fmt.Errorf("update secret %s/%s: %w", m.opts.Namespace, m.opts.SecretName, err)
		}
		m.log.Info("webhook certificate renewed", "reason", reason, "not_after", kp.cert.Leaf.NotAfter)
		return kp, nil
	}
	return nil, fmt.Errorf("secret %s/%s: changed by others %d times in a row", m.opts.Namespace, m.opts.SecretName, attempts)
}

// check parses data and returns it, or why it needs renewing.
func (m *CertManager) check(data map[string][]byte) (*keyPair, string) {
	cert, err := loadKeyPair(data[secretCert], data[secretKey])
	if err != nil {
		return nil, "unusable key pair"
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data[secretBundle]) {
		return nil, "no CA certificate"
	}
	now := time.Now()
	if cert.Leaf.NotAfter.Sub(now) <= m.opts.RenewBefore {
		return nil, "expires at " + cert.Leaf.NotAfter.UTC().Format(time.RFC3339)
	}
	for _, name := range m.names {
		opts := x509.VerifyOptions{
			DNSName:     name,
			Roots:       roots,
			CurrentTime: now,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		if _, err := cert.Leaf.Verify(opts); err != nil {
			return nil, "not valid for " + name
		}
	}
	return &keyPair{certPEM: data[secretCert], cert: cert, bundle: data[secretBundle]}, ""
}

// issue makes a new CA and serving certificate; the bundle has the new CA first, then
// those of oldBundle that are still valid.
func (m *CertManager) issue(oldBundle []byte) (*keyPair, map[string][]byte, error) {
	now := time.Now()
	notBefore, notAfter := now.Add(-time.Hour), now.Add(m.opts.Validity) // an hour for clock skew
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ferry-webhook-ca-" + strconv.FormatInt(now.Unix(), 10)},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: m.names[2]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range m.names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal serving key: %w", err)
	}

	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	n := 1
	for rest := oldBundle; n < maxBundle; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		old, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !old.IsCA || !now.Before(old.NotAfter) {
			continue
		}
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})...)
		n++
	}
	data := map[string][]byte{
		secretCert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		secretKey:    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		secretBundle: bundle,
	}
	cert, err := loadKeyPair(data[secretCert], data[secretKey])
	if err != nil {
		return nil, nil, fmt.Errorf("load serving certificate: %w", err)
	}
	return &keyPair{certPEM: data[secretCert], cert: cert, bundle: bundle}, data, nil
}

// loadKeyPair is tls.X509KeyPair with Leaf set whatever GODEBUG says.
func loadKeyPair(certPEM, keyPEM []byte) (tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err == nil && cert.Leaf == nil {
		cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0])
	}
	return cert, err
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// ensureBundle puts bundle into the caBundle of every webhook of the configuration.
func (m *CertManager) ensureBundle(ctx context.Context, bundle []byte) error {
	name := m.opts.WebhookConfigName
	if name == "" {
		return nil
	}
	api := m.opts.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := api.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if !m.missing {
			m.log.Warn("mutating webhook configuration not found; will keep looking", "webhook_config", name)
			m.missing = true
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get mutating webhook configuration %s: %w", name, err)
	}
	m.missing = false
	var ops []jsonpatch.JsonPatchOperation
	var changed []string
	for i, wh := range cfg.Webhooks {
		if bytes.Equal(wh.ClientConfig.CABundle, bundle) {
			continue
		}
		base := "/webhooks/" + strconv.Itoa(i)
		ops = append(ops,
			// Fails the patch if the list changed since the Get.
			jsonpatch.JsonPatchOperation{Operation: "test", Path: base + "/name", Value: wh.Name},
			jsonpatch.JsonPatchOperation{Operation: "add", Path: base + "/clientConfig/caBundle", Value: bundle})
		changed = append(changed, wh.Name)
	}
	if len(ops) == 0 {
		return nil
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("marshal caBundle patch: %w", err)
	}
	if _, err := api.Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch caBundle of mutating webhook configuration %s: %w", name, err)
	}
	m.log.Info("webhook caBundle updated", "webhook_config", name, "webhooks", changed)
	return nil
}

// swap serves kp now if nothing valid is served, else once it has waited PropagationDelay.
func (m *CertManager) swap(kp *keyPair) {
	cur := m.current.Load()
	switch {
	case cur == nil || !time.Now().Before(cur.Leaf.NotAfter):
		m.serve(kp)
	case bytes.Equal(cur.Certificate[0], kp.cert.Certificate[0]):
		m.pending = nil
	case !bytes.Equal(m.pending, kp.certPEM):
		m.pending, m.since = kp.certPEM, time.Now()
		if m.opts.PropagationDelay == 0 {
			m.serve(kp)
		}
	case time.Since(m.since) >= m.opts.PropagationDelay:
		m.serve(kp)
	}
}

func (m *CertManager) serve(kp *keyPair) {
	cert := kp.cert
	m.current.Store(&cert)
	m.pending = nil
	m.log.Info("serving webhook certificate", "serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter)
}
