package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certValidity is long enough for a demo left running for days, short enough that a leaked
// key is worthless soon; the keys never leave the temporary directory anyway.
const certValidity = 30 * 24 * time.Hour

// keyPair is a certificate with its private key, both also kept PEM-encoded for files.
type keyPair struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// newCA returns a self-signed certificate authority.
func newCA(commonName string) (*keyPair, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return sign(tmpl, nil)
}

// serving issues a TLS server certificate for the given addresses and names.
func (ca *keyPair) serving(commonName string, ips []net.IP, dnsNames []string) (*keyPair, error) {
	return sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips,
		DNSNames:    dnsNames,
	}, ca)
}

// client issues a TLS client certificate; Kubernetes reads the user from the common name
// and the groups from the organizations.
func (ca *keyPair) client(user string, groups ...string) (*keyPair, error) {
	return sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
}

// sign completes tmpl with a fresh key, serial and validity and signs it with parent, or
// with the new key itself when parent is nil.
func sign(tmpl *x509.Certificate, parent *keyPair) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for %s: %w", tmpl.Subject.CommonName, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial for %s: %w", tmpl.Subject.CommonName, err)
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour) // tolerate clock skew between processes
	tmpl.NotAfter = now.Add(certValidity)

	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate for %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key for %s: %w", tmpl.Subject.CommonName, err)
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// write stores the pair as dir/name.crt and dir/name.key.
func (kp *keyPair) write(dir, name string) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), kp.certPEM, 0o600); err != nil {
		return fmt.Errorf("write %s certificate: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), kp.keyPEM, 0o600); err != nil {
		return fmt.Errorf("write %s key: %w", name, err)
	}
	return nil
}

// pki holds every credential of one control plane.
type pki struct {
	ca           *keyPair // signs serving and client certificates; trusted by the apiserver
	frontProxyCA *keyPair // trusted only for the aggregation layer's request headers
	frontProxy   *keyPair
	serving      *keyPair // shared by apiserver, controller-manager and scheduler
	admin        *keyPair
	controllers  *keyPair
	scheduler    *keyPair
	kwok         *keyPair
	saKeyPEM     []byte // signs service account tokens
	saPubPEM     []byte
}

// newPKI generates the credentials; the serving certificate covers the loopback address and
// the names and first service IP that in-cluster clients use for the apiserver.
func newPKI(serviceIP net.IP) (*pki, error) {
	var p pki
	var err error
	if p.ca, err = newCA("ferry-testenv-ca"); err != nil {
		return nil, err
	}
	if p.frontProxyCA, err = newCA("ferry-testenv-front-proxy-ca"); err != nil {
		return nil, err
	}
	if p.frontProxy, err = p.frontProxyCA.client("front-proxy-client"); err != nil {
		return nil, err
	}
	p.serving, err = p.ca.serving("kube-apiserver",
		[]net.IP{net.IPv4(127, 0, 0, 1), serviceIP},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return nil, err
	}
	if p.admin, err = p.ca.client("ferry-testenv-admin", "system:masters"); err != nil {
		return nil, err
	}
	// The bootstrap RBAC policy grants these two users exactly what the components need.
	if p.controllers, err = p.ca.client("system:kube-controller-manager"); err != nil {
		return nil, err
	}
	if p.scheduler, err = p.ca.client("system:kube-scheduler"); err != nil {
		return nil, err
	}
	// kwok writes status of nodes and pods, leases and events; no bootstrap role covers that.
	if p.kwok, err = p.ca.client("kwok-controller", "system:masters"); err != nil {
		return nil, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate service account key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, fmt.Errorf("marshal service account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("marshal service account public key: %w", err)
	}
	p.saKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	p.saPubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	return &p, nil
}

// write stores the files the components read by path into dir.
func (p *pki) write(dir string) error {
	pairs := []struct {
		name string
		kp   *keyPair
	}{
		{"ca", p.ca},
		{"front-proxy-ca", p.frontProxyCA},
		{"front-proxy-client", p.frontProxy},
		{"serving", p.serving},
	}
	for _, pair := range pairs {
		if err := pair.kp.write(dir, pair.name); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), p.saKeyPEM, 0o600); err != nil {
		return fmt.Errorf("write service account key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), p.saPubPEM, 0o600); err != nil {
		return fmt.Errorf("write service account public key: %w", err)
	}
	return nil
}
