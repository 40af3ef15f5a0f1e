package inject_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ferrycd/ferry/internal/secrets/inject"
)

// testLabel marks the namespaces of one test; each test's webhook selects only its own, so
// tests in parallel (and a stopped webhook) do not meet.
const testLabel = "inject-test.ferry.dev/id"

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hook is one test's webhook: a Server on 127.0.0.1 registered by URL.
type hook struct {
	t       *testing.T
	client  kubernetes.Interface
	id      string
	ferryNS string
	appNS   string // a namespace the webhook serves
	config  string // MutatingWebhookConfiguration name
	addr    string
	opts    inject.Options
	logs    *syncBuffer
	server  *inject.Server
	cancel  context.CancelFunc
	done    chan error
}

// startHook starts a webhook for t and waits until the API server calls it.
func startHook(t *testing.T, edit func(*inject.Options)) *hook {
	t.Helper()
	cp := controlPlane(t)
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	h := &hook{t: t, client: client, id: hex.EncodeToString(suffix), logs: &syncBuffer{}}
	h.ferryNS = h.namespace("ferry", nil, nil)
	h.appNS = h.namespace("app", nil, nil)
	h.config = "ferry-inject-" + h.id

	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	cfg := inject.WebhookConfigurationURL(h.config, "https://"+h.addr+inject.DefaultPath, h.ferryNS)
	sel := cfg.Webhooks[0].NamespaceSelector
	sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: testLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{h.id},
	})
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), h.config, metav1.DeleteOptions{})
		if err != nil {
			t.Errorf("delete webhook configuration: %v", err)
		}
	})

	h.opts = inject.Options{
		Config:            testConfig,
		Namespace:         h.ferryNS,
		ServiceName:       "ferry-webhook",
		WebhookConfigName: h.config,
		Client:            client,
		Logger:            slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Cert: inject.CertSettings{
			IPAddresses:      []net.IP{net.IPv4(127, 0, 0, 1)},
			ResyncInterval:   200 * time.Millisecond,
			PropagationDelay: -1,
		},
	}
	if edit != nil {
		edit(&h.opts)
	}
	if h.server, err = inject.New(h.opts); err != nil {
		t.Fatal(err)
	}
	h.serve(ln)
	t.Cleanup(h.stop)
	h.waitMutating(h.appNS)
	return h
}

func (h *hook) serve(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.server.Serve(ctx, ln) }()
}

// stop stops the server and waits for it; a second call does nothing.
func (h *hook) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		h.t.Errorf("Serve: %v", err)
	}
}

// namespace creates a namespace of the test, waits for its default ServiceAccount (without
// which the API server refuses Pods) and returns its name.
func (h *hook) namespace(prefix string, labels, annotations map[string]string) string {
	h.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: prefix + "-" + h.id + "-",
		Labels:       map[string]string{testLabel: h.id},
		Annotations:  annotations,
	}}
	for k, v := range labels {
		ns.Labels[k] = v
	}
	ns, err := h.client.CoreV1().Namespaces().Create(h.t.Context(), ns, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		_ = h.client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	h.eventually("default ServiceAccount of "+ns.Name, func() error {
		_, err := h.client.CoreV1().ServiceAccounts(ns.Name).Get(h.t.Context(), "default", metav1.GetOptions{})
		return err
	})
	return ns.Name
}

// eventually retries f for up to 30 seconds.
func (h *hook) eventually(what string, f func() error) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMutating waits until a dry run of a Pod with a reference in ns comes back wrapped.
func (h *hook) waitMutating(ns string) {
	h.t.Helper()
	h.eventually("webhook called", func() error {
		pod, err := h.create(ns, refPod("probe"), true)
		if err != nil {
			return err
		}
		if !slices.Equal(pod.Spec.Containers[0].Command[:3], inject.ExecPrefix) {
			return errors.New("dry-run Pod not wrapped")
		}
		return nil
	})
}

// create creates pod in ns, as a dry run if dryRun.
func (h *hook) create(ns string, pod *corev1.Pod, dryRun bool) (*corev1.Pod, error) {
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return h.client.CoreV1().Pods(ns).Create(h.t.Context(), pod, opts)
}

// webhookBundle returns the caBundle of the test's webhook.
func (h *hook) webhookBundle() []byte {
	h.t.Helper()
	cfg, err := h.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(h.t.Context(), h.config, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return cfg.Webhooks[0].ClientConfig.CABundle
}

// servedCert returns the certificate the server presents.
func (h *hook) servedCert() (*x509.Certificate, error) {
	conn, err := tls.Dial("tcp", h.addr, &tls.Config{InsecureSkipVerify: true}) // only to read the certificate
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func refPod(name string) *corev1.Pod {
	pod := podOf(container("app", []string{"/app", "serve"}, "PLAIN=plain", "DB_PASSWORD=vault:secret/data/db#password"))
	pod.Namespace = ""
	pod.Name = name
	pod.Spec.Containers[0].Args = []string{"--port", "8080"}
	return pod
}

func TestWebhookWrapsPod(t *testing.T) {
	t.Parallel()
	h := startHook(t, nil)
	in := refPod("app")
	in.Spec.InitContainers = []corev1.Container{container("migrate", []string{"/migrate"}, "URL=postgres://a:${vault:kv/db#pw}@db/a")}
	created, err := h.create(h.appNS, in, false)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := h.client.CoreV1().Pods(h.appNS).Get(t.Context(), created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := pod.Spec
	if len(spec.InitContainers) != 2 || spec.InitContainers[0].Name != "ferry-init" || spec.InitContainers[0].Image != testConfig.Image ||
		!slices.Equal(spec.InitContainers[0].Command, inject.DefaultInitCommand) {
		t.Fatalf("init containers: %+v", spec.InitContainers)
	}
	for _, c := range []corev1.Container{spec.InitContainers[1], spec.Containers[0]} {
		orig := in.Spec.Containers[0]
		if c.Name == "migrate" {
			orig = in.Spec.InitContainers[0]
		}
		if want := slices.Concat(inject.ExecPrefix, orig.Command); !slices.Equal(c.Command, want) {
			t.Errorf("%s: command %q, want %q", c.Name, c.Command, want)
		}
		if !slices.Equal(c.Args, orig.Args) {
			t.Errorf("%s: args %q, want %q", c.Name, c.Args, orig.Args)
		}
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return vm.Name == "ferry-bin" && vm.MountPath == "/ferry/bin" && vm.ReadOnly
		}) {
			t.Errorf("%s: volume mounts %+v", c.Name, c.VolumeMounts)
		}
		env := envMap(c)
		for k, v := range map[string]string{
			"VAULT_ADDR": testConfig.VaultAddress, "FERRY_VAULT_AUTH_METHOD": "kubernetes",
			"FERRY_VAULT_ROLE": testConfig.VaultRole, "FERRY_VAULT_AUTH_PATH": testConfig.VaultAuthPath,
		} {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", c.Name, k, env[k], v)
			}
		}
	}
	if i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "ferry-bin" }); i < 0 ||
		spec.Volumes[i].EmptyDir == nil || spec.Volumes[i].EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("volumes: %+v", spec.Volumes)
	}
	if pod.Annotations[inject.AnnotationInjected] != "true" {
		t.Errorf("annotations: %v", pod.Annotations)
	}
}

func envMap(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

func TestWebhookDeniesWithoutCommand(t *testing.T) {
	t.Parallel()
	h := startHook(t, nil)
	pod := refPod("no-command")
	pod.Spec.Containers[0].Command = nil
	_, err := h.create(h.appNS, pod, false)
	const want = "container app: env DB_PASSWORD holds a vault reference, so the container needs an explicit command; " +
		"Ferry does not look up image entrypoints"
	if err == nil || !strings.Contains(err.Error(), want) || !apierrors.IsForbidden(err) {
		t.Fatalf("create: %v; want forbidden with %q", err, want)
	}
}

func TestWebhookLeavesPlainPod(t *testing.T) {
	t.Parallel()
	h := startHook(t, nil)
	in := podOf(container("app", nil, "PLAIN=x", "ESCAPED_NOT=Vault:x#y"))
	in.Namespace = ""
	in.Spec.AutomountServiceAccountToken = ptr.To(false) // no volume with a generated name
	// What the API server makes of the Pod without the webhook.
	want, err := h.create(h.ferryNS, in.DeepCopy(), true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.create(h.appNS, in.DeepCopy(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations != nil {
		t.Errorf("annotations: %v", got.Annotations)
	}
	want.Spec.NodeName, got.Spec.NodeName = "", ""
	if !equalJSON(t, want.Spec, got.Spec) {
		t.Errorf("spec changed:\nwant %+v\n got %+v", want.Spec, got.Spec)
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	return string(mustJSON(t, a)) == string(mustJSON(t, b))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWebhookOverrides(t *testing.T) {
	t.Parallel()
	h := startHook(t, nil)
	ns := h.namespace("annotated", nil, map[string]string{
		inject.AnnotationAddress:  "https://ns-vault:8200",
		inject.AnnotationRole:     "ns-role",
		inject.AnnotationAuthPath: "ns-path",
	})
	plain, err := h.create(ns, refPod("ns"), false)
	if err != nil {
		t.Fatal(err)
	}
	pod := refPod("pod")
	pod.Annotations = map[string]string{inject.AnnotationRole: "pod-role"}
	annotated, err := h.create(ns, pod, false)
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := h.create(h.appNS, refPod("defaults"), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pod                  *corev1.Pod
		addr, role, authPath string
	}{
		{defaults, testConfig.VaultAddress, testConfig.VaultRole, testConfig.VaultAuthPath},
		{plain, "https://ns-vault:8200", "ns-role", "ns-path"},
		{annotated, "https://ns-vault:8200", "pod-role", "ns-path"},
	} {
		env := envMap(tc.pod.Spec.Containers[0])
		if env["VAULT_ADDR"] != tc.addr || env["FERRY_VAULT_ROLE"] != tc.role || env["FERRY_VAULT_AUTH_PATH"] != tc.authPath {
			t.Errorf("Pod %s: env %v; want %s, %s, %s", tc.pod.Name, env, tc.addr, tc.role, tc.authPath)
		}
	}
}

func TestWebhookFailsClosed(t *testing.T) {
	t.Parallel()
	h := startHook(t, nil)
	optedOut := h.namespace("opted-out", map[string]string{inject.LabelInject: inject.InjectDisabled}, nil)
	h.stop()

	_, err := h.create(h.appNS, refPod("while-down"), false)
	if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Fatalf("create with the webhook down: %v; want a webhook failure", err)
	}
	if _, err := h.create(h.appNS, podOf(container("plain", nil)), false); err == nil {
		t.Error("create of a Pod without references with the webhook down succeeded; the API server should not know")
	}
	for _, ns := range []string{h.ferryNS, optedOut} {
		pod, err := h.create(ns, refPod("spared"), false)
		if err != nil {
			t.Errorf("create in %s with the webhook down: %v", ns, err)
			continue
		}
		if pod.Annotations[inject.AnnotationInjected] != "" {
			t.Errorf("Pod in %s mutated", ns)
		}
	}
}

func TestCertManager(t *testing.T) {
	t.Parallel()
	h := startHook(t, func(o *inject.Options) {
		o.Cert.PropagationDelay = 300 * time.Millisecond
	})
	ctx := t.Context()
	secrets := h.client.CoreV1().Secrets(h.ferryNS)
	secret, err := secrets.Get(ctx, inject.DefaultSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Type != corev1.SecretTypeTLS || len(secret.Data["tls.crt"]) == 0 || len(secret.Data["tls.key"]) == 0 ||
		!bytes.Equal(secret.Data["ca.crt"], h.webhookBundle()) {
		t.Fatalf("secret: type %s, keys %v; bundle matches webhook: %v", secret.Type, keys(secret.Data),
			bytes.Equal(secret.Data["ca.crt"], h.webhookBundle()))
	}
	first, err := h.servedCert()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(first.DNSNames, "ferry-webhook."+h.ferryNS+".svc") || !first.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("served certificate names: %v %v", first.DNSNames, first.IPAddresses)
	}

	certOpts := func(settings inject.CertSettings) inject.CertOptions {
		settings.IPAddresses = h.opts.Cert.IPAddresses
		return inject.CertOptions{
			Client: h.client, Namespace: h.ferryNS, ServiceName: h.opts.ServiceName,
			WebhookConfigName: h.config, CertSettings: settings,
		}
	}

	// A second replica reuses the Secret.
	second, err := inject.NewCertManager(certOpts(inject.CertSettings{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cert, err := second.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Leaf.Equal(first) {
		t.Error("second manager serves another certificate")
	}
	again, err := secrets.Get(ctx, inject.DefaultSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != secret.ResourceVersion {
		t.Error("second manager rewrote the Secret")
	}

	// A replica that finds the certificate too close to its expiry renews it; the server
	// picks that up, and the caBundle trusts both CAs.
	renewer, err := inject.NewCertManager(certOpts(inject.CertSettings{
		Validity:    2 * inject.DefaultValidity,
		RenewBefore: inject.DefaultValidity + time.Hour,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := renewer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	renewed, err := renewer.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Leaf.Equal(first) {
		t.Fatal("renewer kept the certificate")
	}
	bundle := parseBundle(t, h.webhookBundle())
	if len(bundle) != 2 || renewed.Leaf.CheckSignatureFrom(bundle[0]) != nil || first.CheckSignatureFrom(bundle[1]) != nil {
		t.Fatalf("caBundle after renewal: %d certificates, want the new CA and the old", len(bundle))
	}
	h.eventually("server serves the renewed certificate", func() error {
		served, err := h.servedCert()
		if err != nil {
			return err
		}
		if !served.Equal(renewed.Leaf) {
			return errors.New("still the old certificate")
		}
		return nil
	})
	if _, err := h.create(h.appNS, refPod("after-renewal"), false); err != nil {
		t.Errorf("create after renewal: %v", err)
	}

	// Someone resets the caBundle; the server repairs it.
	want := h.webhookBundle()
	patch := `[{"op":"replace","path":"/webhooks/0/clientConfig/caBundle","value":""}]`
	if _, err := h.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, h.config,
		types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually("caBundle repaired", func() error {
		if !bytes.Equal(h.webhookBundle(), want) {
			return errors.New("caBundle not repaired")
		}
		return nil
	})
	h.waitMutating(h.appNS)
	if !strings.Contains(h.logs.String(), "webhook caBundle updated") {
		t.Error("no log line for the repair")
	}
}

// TestCertManagerRace: replicas starting together end up with one certificate.
func TestCertManagerRace(t *testing.T) {
	t.Parallel()
	cp := controlPlane(t)
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := client.CoreV1().Namespaces().Create(t.Context(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "race-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
	cfg := inject.WebhookConfiguration("race-"+ns.Name, ns.Name, "ferry", inject.DefaultPath)
	// Scoped to no namespace, as startHook scopes its own to its test's: this configuration
	// points at a Service that does not exist, and would fail every Pod that the tests running
	// beside this one create.
	sel := cfg.Webhooks[0].NamespaceSelector
	sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: testLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"none-" + ns.Name},
	})
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
	})

	const replicas = 5
	managers := make([]*inject.CertManager, replicas)
	var wg sync.WaitGroup
	for i := range managers {
		m, err := inject.NewCertManager(inject.CertOptions{
			Client: client, Namespace: ns.Name, ServiceName: "ferry", WebhookConfigName: cfg.Name,
		})
		if err != nil {
			t.Fatal(err)
		}
		managers[i] = m
		wg.Go(func() {
			if err := m.Sync(t.Context()); err != nil {
				t.Errorf("Sync: %v", err)
			}
		})
	}
	wg.Wait()
	var leaf *x509.Certificate
	for _, m := range managers {
		c, err := m.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if leaf != nil && !leaf.Equal(c.Leaf) {
			t.Error("replicas serve different certificates")
		}
		leaf = c.Leaf
	}
	got, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), cfg.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := parseBundle(t, got.Webhooks[0].ClientConfig.CABundle)
	if len(bundle) != 1 || leaf.CheckSignatureFrom(bundle[0]) != nil {
		t.Errorf("caBundle: %d certificates, want the one CA", len(bundle))
	}
}

func parseBundle(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestWebhookLogsNoValues plants unique values in a Pod's environment, plain and in
// references, and looks for them in everything the webhook logged.
func TestWebhookLogsNoValues(t *testing.T) {
	t.Parallel()
	h := startHook(t, nil)
	canaries := []string{"canary-plain-7f3a9c", "canary-path-51be02", "canary-key-c04d1e", "canary-bad-9e8d7c"}
	values := []string{
		"PLAIN=" + canaries[0],
		"REF=vault:secret/data/" + canaries[1] + "#password",
		"INLINE=x${vault:kv/db#" + canaries[2] + "}y",
	}
	good := podOf(container("app", []string{"/app"}, values...))
	good.Namespace = ""
	if _, err := h.create(h.appNS, good, false); err != nil {
		t.Fatal(err)
	}
	noCommand := podOf(container("app", nil, values...))
	noCommand.Namespace, noCommand.Name = "", "no-command"
	if _, err := h.create(h.appNS, noCommand, false); err == nil {
		t.Fatal("Pod without command created")
	}
	malformed := podOf(container("app", []string{"/app"}, append(values, "BAD=vault:"+canaries[3])...))
	malformed.Namespace, malformed.Name = "", "malformed"
	_, err := h.create(h.appNS, malformed, false)
	if err == nil || !strings.Contains(err.Error(), canaries[3]) {
		t.Fatalf("create malformed: %v; want the reference quoted", err)
	}

	logs := h.logs.String()
	for _, want := range []string{"webhook wrapped containers", "webhook refused Pod", `"problems":["app env BAD"]`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	for _, c := range canaries {
		if strings.Contains(logs, c) {
			t.Errorf("logs hold %q:\n%s", c, logs)
		}
	}
}

// TestWebhookConfiguration checks the shipped configuration against the API server's
// validation and the brief.
func TestWebhookConfiguration(t *testing.T) {
	t.Parallel()
	cfg := inject.WebhookConfiguration("ferry-secrets", "ferry-system", "ferry-webhook", inject.DefaultPath)
	wh := cfg.Webhooks[0]
	if *wh.FailurePolicy != admissionregistrationv1.Fail || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		*wh.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy ||
		!slices.Equal(wh.AdmissionReviewVersions, []string{"v1"}) ||
		wh.ClientConfig.Service.Namespace != "ferry-system" || *wh.ClientConfig.Service.Path != inject.DefaultPath {
		t.Errorf("webhook: %+v", wh)
	}
	client, err := kubernetes.NewForConfig(controlPlane(t).Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name = "dry-run-" + time.Now().Format("150405.000000")
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(t.Context(), cfg,
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("API server refuses the configuration: %v", err)
	}
}
