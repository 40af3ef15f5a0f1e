package inject_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	k8sjson "sigs.k8s.io/json"

	"github.com/ferrycd/ferry/internal/secrets/inject"
	"github.com/ferrycd/ferry/internal/secrets/ref"
)

// seedPods are Pods worth starting a fuzzer from.
func seedPods() []*corev1.Pod {
	wrapped := podOf(container("app", []string{"/app"}, "S=vault:a#b"))
	done, _ := inject.Mutate(wrapped, testConfig)
	initRefs := podOf(container("app", []string{"/app"}, "A=x"))
	initRefs.Spec.InitContainers = []corev1.Container{container("m", []string{"/m"}, "B=${vault:kv/x#y#3}")}
	initRefs.Spec.Volumes = []corev1.Volume{{Name: "v"}}
	initRefs.Annotations = map[string]string{inject.AnnotationRole: "r", "a/b~c": "d"}
	return []*corev1.Pod{
		podOf(container("app", []string{"/app"}, "DB=vault:secret/data/db#password")),
		podOf(container("app", nil, "DB=vault:secret/data/db#password")),
		podOf(container("app", []string{"/app"}, "DB=vault:secret/data/db")),
		podOf(container("app", []string{"/app"}, "URL=a${vault:p#k}b$${vault:c")),
		podOf(container("plain", nil, "A=b")),
		done.Pod,
		initRefs,
	}
}

// FuzzMutate feeds Mutate arbitrary Pod JSON; mutate checks the patch and idempotence, and
// this checks that every container with a reference ends up wrapped.
func FuzzMutate(f *testing.F) {
	for _, p := range seedPods() {
		b, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","command":["x"],"env":[{"name":"V","value":"vault:p#k"}],"volumeMounts":null}],"volumes":null,"initContainers":[]},"metadata":{"annotations":{}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var decoded corev1.Pod
		if err := k8sjson.UnmarshalCaseSensitivePreserveInts(data, &decoded); err != nil {
			return
		}
		// What the API server would send: the Pod as its JSON says it.
		canon, err := json.Marshal(&decoded)
		if err != nil {
			return
		}
		var pod corev1.Pod
		if err := k8sjson.UnmarshalCaseSensitivePreserveInts(canon, &pod); err != nil {
			t.Fatalf("decode re-encoded Pod: %v", err)
		}
		m, err := mutate(t, &pod, testConfig)
		if err != nil {
			var deny *inject.DenyError
			if !errors.As(err, &deny) || len(deny.Problems) == 0 || deny.Error() == "" {
				t.Fatalf("Mutate: %v; want a DenyError with problems", err)
			}
			return
		}
		out := &pod
		if m != nil {
			out = m.Pod
			if out.Annotations[inject.AnnotationInjected] != "true" {
				t.Errorf("no %s annotation", inject.AnnotationInjected)
			}
		} else if !needsRefs(&pod) {
			return
		}
		// Every container with a reference is wrapped, and the Pod has Ferry's parts once.
		for _, c := range slices.Concat(out.Spec.InitContainers, out.Spec.Containers) {
			if !needsRefs(&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}) {
				continue
			}
			if !slices.Equal(c.Command[:min(3, len(c.Command))], inject.ExecPrefix) {
				t.Errorf("container %q not wrapped: %q", c.Name, c.Command)
			}
			if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
				return vm.Name == inject.VolumeName && path.Clean(vm.MountPath) == inject.BinDir
			}) {
				t.Errorf("container %q does not mount %s", c.Name, inject.VolumeName)
			}
		}
		if n := countFunc(out.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == inject.InitContainerName }); n != 1 {
			t.Errorf("%d init containers %s", n, inject.InitContainerName)
		}
		if n := countFunc(out.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == inject.VolumeName }); n != 1 {
			t.Errorf("%d volumes %s", n, inject.VolumeName)
		}
	})
}

func needsRefs(pod *corev1.Pod) bool {
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		for _, e := range c.Env {
			if ref.Contains(e.Value) {
				return true
			}
		}
	}
	return false
}

func countFunc[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}

// unreachableClient is a client of an API server that is not there.
func unreachableClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// review is the JSON of an AdmissionReview of a Pod creation.
func review(t testing.TB, obj any) []byte {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("uid-1"),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "apps",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends body to h and returns the AdmissionReview's response, failing unless the
// answer is one.
func post(t testing.TB, h http.Handler, contentType string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, inject.DefaultPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var out admissionv1.AdmissionReview
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, rec.Body)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("answer is not an AdmissionReview response: %s", rec.Body)
	}
	if out.Response.Result == nil || out.Response.Result.Code == 0 {
		t.Fatalf("answer without a result code: %s", rec.Body)
	}
	return out.Response
}

func newOfflineServer(t testing.TB) *inject.Server {
	t.Helper()
	s, err := inject.New(inject.Options{
		Config:      testConfig,
		Namespace:   "ferry",
		ServiceName: "ferry-webhook",
		Client:      unreachableClient(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzHandler feeds the handler arbitrary bodies: whatever comes in, an AdmissionReview
// comes out, for the request's UID when it has one, with a patch that applies to its object.
func FuzzHandler(f *testing.F) {
	for _, p := range seedPods() {
		f.Add(review(f, p))
	}
	f.Add(review(f, &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}}))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","resource":{"version":"v1","resource":"pods"},"object":[1]}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{`))
	h := newOfflineServer(f).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := post(t, h, "application/json", body)
		var in admissionv1.AdmissionReview
		if err := k8sjson.UnmarshalCaseSensitivePreserveInts(body, &in); err == nil && in.Request != nil &&
			in.APIVersion == "admission.k8s.io/v1" && in.Kind == "AdmissionReview" && in.Request.UID != "" &&
			resp.UID != in.Request.UID {
			t.Errorf("response UID %q for request %q", resp.UID, in.Request.UID)
		}
		if len(resp.Patch) == 0 {
			return
		}
		if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch in a response that is not an allowed JSON patch: %+v", resp)
		}
		patch, err := jsonpatchapply.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("decode patch: %v", err)
		}
		if _, err := patch.Apply(in.Request.Object.Raw); err != nil {
			t.Fatalf("apply patch: %v", err)
		}
	})
}
