package inject_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycd/ferry/internal/secrets/inject"
)

// editReview returns the review of obj after edit changed its request.
func editReview(t *testing.T, obj any, edit func(*admissionv1.AdmissionReview)) []byte {
	t.Helper()
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(review(t, obj), &r); err != nil {
		t.Fatal(err)
	}
	edit(&r)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHandlerHostileInput runs without an API server: none of these requests needs one.
func TestHandlerHostileInput(t *testing.T) {
	h := newOfflineServer(t).Handler()
	refPod := podOf(container("app", []string{"/app"}, "S=vault:a#b"))
	huge := podOf(container("app", []string{"/app"}, "BIG="+strings.Repeat("x", inject.MaxRequestBytes)))

	for _, tc := range []struct {
		name        string
		contentType string
		body        []byte
		code        int32
		allowed     bool
		message     string
	}{
		{name: "oversized", body: review(t, huge), code: 413, message: "exceeds"},
		{name: "text/plain", contentType: "text/plain", body: review(t, refPod), code: 400, message: "content type"},
		{name: "no content type", contentType: "-", body: review(t, refPod), code: 400, message: "content type"},
		{name: "garbage", body: []byte("\x00\xffnot json"), code: 400, message: "not a JSON AdmissionReview"},
		{name: "empty", body: nil, code: 400, message: "not a JSON AdmissionReview"},
		{name: "JSON array", body: []byte(`[1,2]`), code: 400, message: "not a JSON AdmissionReview"},
		{name: "null", body: []byte(`null`), code: 400, message: "not an admission.k8s.io/v1 AdmissionReview"},
		{name: "v1beta1", body: editReview(t, refPod, func(r *admissionv1.AdmissionReview) { r.APIVersion = "admission.k8s.io/v1beta1" }),
			code: 400, message: "not an admission.k8s.io/v1 AdmissionReview"},
		{name: "wrong kind", body: editReview(t, refPod, func(r *admissionv1.AdmissionReview) { r.Kind = "Pod" }),
			code: 400, message: "not an admission.k8s.io/v1 AdmissionReview"},
		{name: "no request", body: editReview(t, refPod, func(r *admissionv1.AdmissionReview) { r.Request = nil }),
			code: 400, message: "without a request"},
		{name: "no object", body: editReview(t, refPod, func(r *admissionv1.AdmissionReview) { r.Request.Object.Raw = nil }),
			code: 400, message: "no object"},
		{name: "object not an object", body: editReview(t, refPod, func(r *admissionv1.AdmissionReview) { r.Request.Object.Raw = []byte(`"x"`) }),
			code: 400, message: "not a Pod"},
		{name: "ConfigMap as a Pod", body: review(t, &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}}),
			code: 400, message: `"v1" "ConfigMap", not a v1 Pod`},
		{name: "other resource", body: editReview(t, refPod, func(r *admissionv1.AdmissionReview) {
			r.Request.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"}
		}), code: 200, allowed: true},
		{name: "update", body: editReview(t, refPod, func(r *admissionv1.AdmissionReview) { r.Request.Operation = admissionv1.Update }),
			code: 200, allowed: true},
		{name: "subresource", body: editReview(t, refPod, func(r *admissionv1.AdmissionReview) { r.Request.SubResource = "ephemeralcontainers" }),
			code: 200, allowed: true},
		{name: "Ferry's namespace", body: editReview(t, refPod, func(r *admissionv1.AdmissionReview) { r.Request.Namespace = "ferry" }),
			code: 200, allowed: true},
		{name: "no references", body: review(t, podOf(container("app", nil, "A=b"))), code: 200, allowed: true},
		{name: "charset", contentType: "application/json; charset=utf-8", body: review(t, podOf(container("app", nil))), code: 200, allowed: true},
		{name: "denied", body: review(t, podOf(container("app", nil, "S=vault:a#b"))), code: 403,
			message: "container app: env S holds a vault reference, so the container needs an explicit command"},
		{name: "namespace unreadable", body: review(t, refPod), code: 500, message: "read namespace apps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			switch ct {
			case "":
				ct = "application/json"
			case "-":
				ct = ""
			}
			resp := post(t, h, ct, tc.body)
			if resp.Result.Code != tc.code || resp.Allowed != tc.allowed || !strings.Contains(resp.Result.Message, tc.message) {
				t.Errorf("got code %d, allowed %v, message %q; want %d, %v, %q",
					resp.Result.Code, resp.Allowed, resp.Result.Message, tc.code, tc.allowed, tc.message)
			}
			if len(resp.Patch) != 0 {
				t.Errorf("unexpected patch %s", resp.Patch)
			}
		})
	}
}

func TestHandlerHTTP(t *testing.T) {
	h := newOfflineServer(t).Handler()
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, inject.DefaultPath, http.StatusMethodNotAllowed},
		{http.MethodPost, "/other", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tc.method, tc.path, bytes.NewReader(nil))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.want)
		}
	}
}

func TestNewChecksOptions(t *testing.T) {
	ok := inject.Options{Config: testConfig, Namespace: "ferry", ServiceName: "svc", Client: unreachableClient(t)}
	for name, edit := range map[string]func(*inject.Options){
		"no image":           func(o *inject.Options) { o.Config.Image = "" },
		"no namespace":       func(o *inject.Options) { o.Namespace = "" },
		"no service":         func(o *inject.Options) { o.ServiceName = "" },
		"no client":          func(o *inject.Options) { o.Client = nil },
		"relative path":      func(o *inject.Options) { o.Path = "mutate" },
		"renew after expiry": func(o *inject.Options) { o.Cert.Validity, o.Cert.RenewBefore = 1, 2 },
	} {
		opts := ok
		edit(&opts)
		if _, err := inject.New(opts); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := inject.New(ok); err != nil {
		t.Errorf("New: %v", err)
	}
}

// TestServeFails: Serve and Run return listener failures instead of hanging.
func TestServeFails(t *testing.T) {
	s := newOfflineServer(t)
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := s.Serve(t.Context(), ln); err == nil {
		t.Error("Serve on a closed listener: no error")
	}

	busy, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s, err = inject.New(inject.Options{Addr: busy.Addr().String(), Config: testConfig, Namespace: "ferry",
		ServiceName: "svc", Client: unreachableClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); err == nil {
		t.Error("Run on a busy address: no error")
	}
}
