package inject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	k8sjson "sigs.k8s.io/json"
)

// MaxRequestBytes is the largest AdmissionReview the handler reads.
const MaxRequestBytes = 3 << 20

// DefaultAddr is where Server listens unless told otherwise.
const DefaultAddr = ":8443"

// namespaceTimeout bounds the lookup of a Pod's namespace, within the webhook's own timeout.
const namespaceTimeout = 5 * time.Second

// Options configures a Server.
type Options struct {
	// Addr is the TLS listen address (DefaultAddr).
	Addr string
	// Path is the webhook's URL path (DefaultPath).
	Path string
	// Config is what the webhook injects.
	Config Config
	// Namespace is Ferry's: it holds the certificate Secret and the Service, and the webhook
	// leaves its Pods alone.
	Namespace string
	// ServiceName is the Service in front of the webhook; the certificate is issued for it.
	ServiceName string
	// WebhookConfigName is the MutatingWebhookConfiguration whose caBundle the server keeps.
	WebhookConfigName string
	// SecretName holds the certificate (DefaultSecretName).
	SecretName string
	// Client reads namespaces and manages the certificate.
	Client kubernetes.Interface
	// Logger receives a line per changed or refused Pod and what the certificate manager
	// does; nil discards. No line holds a value of a Pod's environment.
	Logger *slog.Logger
	// Cert tunes the certificate.
	Cert CertSettings
}

// Server is the webhook: the admission handler behind TLS with a managed certificate.
type Server struct {
	opts  Options
	log   *slog.Logger
	certs *CertManager
	mux   *http.ServeMux
}

// New checks opts and returns a Server.
func New(opts Options) (*Server, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	if !strings.HasPrefix(opts.Path, "/") {
		return nil, fmt.Errorf("inject: path %q does not start with /", opts.Path)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	certs, err := NewCertManager(CertOptions{
		Client:            opts.Client,
		Logger:            log,
		Namespace:         opts.Namespace,
		SecretName:        opts.SecretName,
		ServiceName:       opts.ServiceName,
		WebhookConfigName: opts.WebhookConfigName,
		CertSettings:      opts.Cert,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: log, certs: certs, mux: http.NewServeMux()}
	s.mux.Handle(opts.Path, http.HandlerFunc(s.serveAdmission))
	return s, nil
}

// Handler returns the webhook's HTTP handler: AdmissionReview v1 at Options.Path, 404
// elsewhere.
func (s *Server) Handler() http.Handler { return s.mux }

// Certs returns the server's certificate manager.
func (s *Server) Certs() *CertManager { return s.certs }

// Ready reports whether the server has a certificate to serve.
func (s *Server) Ready() bool { return s.certs.Ready() }

// Run listens on Options.Addr and serves until ctx ends; see Serve.
func (s *Server) Run(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("webhook: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve runs the certificate manager and serves TLS on ln until ctx ends, then shuts down
// gracefully. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	certsDone := make(chan struct{})
	go func() {
		defer close(certsDone)
		_ = s.certs.Run(ctx) // returns only when ctx ends
	}()
	defer func() {
		cancel()
		<-certsDone
	}()

	srv := &http.Server{
		Handler:           s.mux,
		TLSConfig:         s.certs.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// TLS handshake errors of probes and scanners are noise.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	s.log.Info("webhook listening", "addr", ln.Addr().String(), "path", s.opts.Path)
	select {
	case err := <-errc:
		return fmt.Errorf("webhook: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("webhook: shut down: %w", err)
	}
	return nil
}

// serveAdmission answers an AdmissionReview. Whatever comes in, what goes out is an
// AdmissionReview: a request it cannot read is refused with code 400 (413 when too large).
func (s *Server) serveAdmission(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.reply(w, nil, errored(http.StatusBadRequest, "content type %q is not application/json", r.Header.Get("Content-Type")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.reply(w, nil, errored(http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", MaxRequestBytes))
			return
		}
		s.reply(w, nil, errored(http.StatusBadRequest, "read request body: %v", err))
		return
	}
	var review admissionv1.AdmissionReview
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(body, &review); err != nil {
		s.reply(w, nil, errored(http.StatusBadRequest, "request is not a JSON AdmissionReview: %v", err))
		return
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		s.reply(w, nil, errored(http.StatusBadRequest, "request is a %q %q, not an admission.k8s.io/v1 AdmissionReview",
			truncate(review.APIVersion), truncate(review.Kind)))
		return
	}
	if review.Request == nil || review.Request.UID == "" {
		s.reply(w, nil, errored(http.StatusBadRequest, "AdmissionReview without a request"))
		return
	}
	s.reply(w, review.Request, s.admit(r.Context(), review.Request))
}

// reply writes the AdmissionReview with resp for req, which is nil when unknown.
func (s *Server) reply(w http.ResponseWriter, req *admissionv1.AdmissionRequest, resp admission.Response) {
	if req != nil {
		if err := resp.Complete(admission.Request{AdmissionRequest: *req}); err != nil {
			resp = errored(http.StatusInternalServerError, "encode patch: %v", err)
			resp.UID = req.UID
		}
	} else if resp.Result != nil && resp.Result.Code >= 400 {
		s.log.Warn("webhook refused an unreadable request", "code", resp.Result.Code, "reason", resp.Result.Message)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: &resp.AdmissionResponse,
	}
	body, err := json.Marshal(&review)
	if err != nil {
		http.Error(w, "encode AdmissionReview", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// admit decides on one request.
func (s *Server) admit(ctx context.Context, req *admissionv1.AdmissionRequest) admission.Response {
	if req.Operation != admissionv1.Create || req.Resource != podResource || req.SubResource != "" {
		return admission.Allowed("not a Pod creation")
	}
	if req.Namespace == s.opts.Namespace {
		return admission.Allowed("Ferry's own namespace")
	}
	if len(req.Object.Raw) == 0 {
		return errored(http.StatusBadRequest, "the request has no object")
	}
	var pod corev1.Pod
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &pod); err != nil {
		return errored(http.StatusBadRequest, "the object is not a Pod: %v", err)
	}
	if pod.Kind != "" && (pod.Kind != "Pod" || pod.APIVersion != "v1") {
		return errored(http.StatusBadRequest, "the object is a %q %q, not a v1 Pod", truncate(pod.APIVersion), truncate(pod.Kind))
	}
	log := s.log.With("namespace", req.Namespace, "pod", podName(req, &pod), "uid", string(req.UID))

	// A Pod without references needs no namespace lookup.
	m, err := Mutate(&pod, s.opts.Config)
	if m == nil && err == nil {
		return admission.Allowed("")
	}
	var deny *DenyError
	if errors.As(err, &deny) {
		return s.denied(log, deny)
	}
	if err != nil {
		log.Error("webhook cannot mutate Pod", "error", err)
		return errored(http.StatusInternalServerError, "%v", err)
	}

	// Now with the namespace's overrides.
	nsCtx, cancel := context.WithTimeout(ctx, namespaceTimeout)
	defer cancel()
	ns, err := s.opts.Client.CoreV1().Namespaces().Get(nsCtx, req.Namespace, metav1.GetOptions{})
	if err != nil {
		log.Error("webhook cannot read the Pod's namespace", "error", err)
		return errored(http.StatusInternalServerError, "read namespace %s: %v", req.Namespace, err)
	}
	m, err = Mutate(&pod, s.opts.Config.WithAnnotations(ns.Annotations))
	if errors.As(err, &deny) {
		return s.denied(log, deny)
	}
	if err != nil || m == nil {
		// Unreachable: the namespace's annotations change neither.
		log.Error("webhook mutation changed its mind", "error", err)
		return errored(http.StatusInternalServerError, "inconsistent mutation")
	}
	log.Info("webhook wrapped containers with ferry exec", "containers", m.Wrapped)
	resp := admission.Patched("", m.Patch...)
	return resp.WithWarnings(m.Warnings...)
}

// denied logs and returns the refusal deny. The log names containers and variables only,
// since deny's message quotes references.
func (s *Server) denied(log *slog.Logger, deny *DenyError) admission.Response {
	var where []string
	for _, p := range deny.Problems {
		w := p.Container
		if p.Subject != "" {
			w += " " + p.Subject
		} else {
			w += " env " + p.Env
		}
		where = append(where, strings.TrimSpace(w))
	}
	log.Info("webhook refused Pod", "problems", where)
	return admission.Denied(deny.Error())
}

func errored(code int32, format string, args ...any) admission.Response {
	return admission.Errored(code, fmt.Errorf(format, args...))
}

// podName is the Pod's name, or its generateName followed by "*".
func podName(req *admissionv1.AdmissionRequest, pod *corev1.Pod) string {
	switch {
	case req.Name != "":
		return req.Name
	case pod.Name != "":
		return pod.Name
	case pod.GenerateName != "":
		return pod.GenerateName + "*"
	}
	return ""
}

// truncate shortens s, which comes from a request, for a message.
func truncate(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
