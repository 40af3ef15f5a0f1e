package delivery

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/secrets/ref"
)

func parseObject(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

const refDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      initContainers:
      - name: migrate
        env: [{name: DB, value: "vault:secret/db#url"}]
      containers:
      - name: api
        env:
        - {name: PLAIN, value: "hello"}
        - {name: DSN, value: "postgres://app:${vault:secret/db#pw}@db/${vault:kv1/app#name}"}
`

const refSecret = `apiVersion: v1
kind: Secret
metadata:
  name: tls
  annotations: {ferry.dev/secrets: resolve}
stringData:
  tls.key: vault:secret/tls#key#3
  note: plain text stays
data:
  ca.crt: ` + "%s\n"

// fakeSecrets answers from a map; the real Vault is exercised by the end-to-end tests.
type fakeSecrets struct {
	values   map[string]string // "path#key" -> value
	versions map[string]int
	err      error
}

func (f fakeSecrets) Resolve(_ context.Context, _ *v1alpha1.Application, refs []ref.Ref) (Lookup, error) {
	if f.err != nil {
		return nil, f.err
	}
	return func(r ref.Ref) (string, error) {
		v, ok := f.values[r.Path+"#"+r.Key]
		if !ok {
			return "", errors.New("no such key")
		}
		return v, nil
	}, nil
}

func (f fakeSecrets) Versions(_ context.Context, _ *v1alpha1.Application, paths []string) (map[string]int, error) {
	out := map[string]int{}
	for _, p := range paths {
		out[p] = f.versions[p]
	}
	return out, f.err
}

func TestApplySecrets(t *testing.T) {
	caRef := base64.StdEncoding.EncodeToString([]byte("vault:secret/tls#ca"))
	objs := func() []*unstructured.Unstructured {
		return []*unstructured.Unstructured{
			parseObject(t, refDeployment),
			parseObject(t, fmt.Sprintf(refSecret, caRef)),
			parseObject(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {x: 'vault:secret/db#pw'}\n"),
			parseObject(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: plain}\nspec: {template: {spec: {containers: [{name: a}]}}}\n"),
		}
	}
	src := fakeSecrets{
		values:   map[string]string{"secret/tls#key": "KEY", "secret/tls#ca": "CA"},
		versions: map[string]int{"secret/db": 4, "kv1/app": 0, "secret/tls": 3},
	}
	r := &Reconciler{opts: Options{Secrets: src}.withDefaults()}
	got := objs()
	state, err := r.applySecrets(t.Context(), &v1alpha1.Application{}, got)
	if err != nil {
		t.Fatal(err)
	}
	if state.revision == "" || len(state.objects) != 2 {
		t.Fatalf("state = %+v, want a revision and 2 objects", state)
	}
	ann, _, _ := unstructured.NestedString(got[0].Object, "spec", "template", "metadata", "annotations", v1alpha1.AnnotationSecretVersions)
	if ann == "" {
		t.Error("the referencing Deployment has no secret-versions annotation")
	}
	if _, found, _ := unstructured.NestedString(got[3].Object, "spec", "template", "metadata", "annotations", v1alpha1.AnnotationSecretVersions); found {
		t.Error("a Deployment without references got the annotation")
	}
	sd, _, _ := unstructured.NestedStringMap(got[1].Object, "stringData")
	data, _, _ := unstructured.NestedStringMap(got[1].Object, "data")
	if sd["tls.key"] != "KEY" || sd["note"] != "plain text stays" || data["ca.crt"] != base64.StdEncoding.EncodeToString([]byte("CA")) {
		t.Errorf("resolved Secret: stringData %v, data %v", sd, data)
	}
	if v, _, _ := unstructured.NestedString(got[2].Object, "data", "x"); v != "vault:secret/db#pw" {
		t.Errorf("a ConfigMap's reference was touched: %q", v)
	}

	// A new version of a path the Deployment uses changes its annotation and the revision.
	src.versions = map[string]int{"secret/db": 5, "kv1/app": 0, "secret/tls": 3}
	r.opts.Secrets = src
	again := objs()
	state2, err := r.applySecrets(t.Context(), &v1alpha1.Application{}, again)
	if err != nil {
		t.Fatal(err)
	}
	ann2, _, _ := unstructured.NestedString(again[0].Object, "spec", "template", "metadata", "annotations", v1alpha1.AnnotationSecretVersions)
	if ann2 == ann || state2.revision == state.revision {
		t.Error("a new version changed neither the annotation nor the revision")
	}
}

func TestApplySecretsWithoutVault(t *testing.T) {
	r := &Reconciler{opts: Options{}.withDefaults()}
	objs := []*unstructured.Unstructured{parseObject(t, refDeployment)}
	state, err := r.applySecrets(t.Context(), &v1alpha1.Application{}, objs)
	if err != nil || state.revision != "" {
		t.Fatalf("got %+v, %v; want references in pod templates left for ferry exec", state, err)
	}
}

func TestApplySecretsErrors(t *testing.T) {
	const canary = "canary-value-7f3a"
	tests := []struct {
		name, doc, reason string
		src               SecretSource
	}{
		{"malformed in env", strings.Replace(refDeployment, "vault:secret/db#url", "vault:secret/db", 1), "InvalidSecretReference", fakeSecrets{}},
		{"malformed in a Secret", fmt.Sprintf(refSecret, base64.StdEncoding.EncodeToString([]byte("vault:"))), "InvalidSecretReference", fakeSecrets{}},
		{"no Vault configured", fmt.Sprintf(refSecret, "Y2E="), "VaultNotConfigured", nil},
		{"Vault down", refDeployment, "SecretNotResolved", fakeSecrets{err: errors.New("vault: connection refused")}},
		{"missing key", fmt.Sprintf(refSecret, base64.StdEncoding.EncodeToString([]byte("vault:secret/tls#ca"))), "SecretNotResolved",
			fakeSecrets{values: map[string]string{"secret/tls#key": canary}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Reconciler{opts: Options{Secrets: tt.src}.withDefaults()}
			_, err := r.applySecrets(t.Context(), &v1alpha1.Application{}, []*unstructured.Unstructured{parseObject(t, tt.doc)})
			if err == nil {
				t.Fatal("no error")
			}
			if got := reasonOf(err, ""); got != tt.reason {
				t.Errorf("reason %q, want %q: %v", got, tt.reason, err)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error shows a secret value: %v", err)
			}
		})
	}
}
