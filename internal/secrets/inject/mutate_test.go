package inject_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	jsonpatch "gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	k8sjson "sigs.k8s.io/json"

	"github.com/ferrycd/ferry/internal/secrets/inject"
	"github.com/ferrycd/ferry/internal/secrets/ref"
)

var testConfig = inject.Config{
	Image:         "ghcr.io/ferrycd/ferry:test",
	VaultAddress:  "https://vault.example:8200",
	VaultRole:     "apps",
	VaultAuthPath: "k8s",
}

// container returns a container with command and env given as NAME=VALUE.
func container(name string, command []string, env ...string) corev1.Container {
	c := corev1.Container{Name: name, Image: "app:1", Command: command}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: v})
	}
	return c
}

func podOf(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "apps"},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

// mutate runs Mutate and checks what holds for every result: the input is left alone, the
// patch turns the input's JSON into the result's, and a second run changes nothing.
func mutate(t testing.TB, pod *corev1.Pod, cfg inject.Config) (*inject.Mutation, error) {
	t.Helper()
	before := pod.DeepCopy()
	m, err := inject.Mutate(pod, cfg)
	if !equality.Semantic.DeepEqual(before, pod) {
		t.Fatalf("Mutate changed its input:\n%s", cmp.Diff(before, pod))
	}
	if m == nil {
		return nil, err
	}
	if err != nil {
		t.Fatalf("Mutate returned both a mutation and %v", err)
	}
	if got := applyPatch(t, pod, m.Patch); !equality.Semantic.DeepEqual(got, m.Pod) {
		t.Fatalf("patch and Pod disagree (-patched +Pod):\n%s", cmp.Diff(got, m.Pod))
	}
	again, err := inject.Mutate(m.Pod, cfg)
	if again != nil || err != nil {
		t.Fatalf("Mutate of its own result: %+v, %v", again, err)
	}
	return m, nil
}

// applyPatch applies ops to the JSON of pod.
func applyPatch(t testing.TB, pod *corev1.Pod, ops []jsonpatch.JsonPatchOperation) *corev1.Pod {
	t.Helper()
	doc, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatchapply.DecodePatch(raw)
	if err != nil {
		t.Fatalf("decode patch %s: %v", raw, err)
	}
	out, err := patch.Apply(doc)
	if err != nil {
		t.Fatalf("apply patch %s: %v", raw, err)
	}
	var got corev1.Pod
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(out, &got); err != nil {
		t.Fatalf("decode patched Pod: %v", err)
	}
	return &got
}

func TestMutateWrapsContainers(t *testing.T) {
	pod := podOf(
		container("app", []string{"/app", "serve"}, "PLAIN=x", "DB_PASSWORD=vault:secret/data/db#password"),
		container("sidecar", []string{"/sidecar"}, "PLAIN=y"),
		container("inline", []string{"/bin/sh", "-c"}, "URL=postgres://app:${vault:secret/data/db#pw}@db/app"),
	)
	pod.Spec.Containers[0].Args = []string{"--port", "8080"}
	pod.Spec.InitContainers = []corev1.Container{
		container("migrate", []string{"/migrate"}, "DB=vault:secret/data/db#password#2"),
		container("wait", []string{"/wait"}),
	}
	pod.Spec.Volumes = []corev1.Volume{{Name: "data"}}
	pod.Annotations = map[string]string{"keep": "me"}

	m, err := mutate(t, pod, testConfig)
	if err != nil || m == nil {
		t.Fatalf("Mutate: %v, %v", m, err)
	}
	if diff := cmp.Diff([]string{"initContainers/migrate", "containers/app", "containers/inline"}, m.Wrapped); diff != "" {
		t.Errorf("Wrapped (-want +got):\n%s", diff)
	}
	spec := m.Pod.Spec

	wantInit := corev1.Container{
		Name:            inject.InitContainerName,
		Image:           testConfig.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         inject.DefaultInitCommand,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](65532),
			RunAsGroup:               ptr.To[int64](65532),
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		VolumeMounts:             []corev1.VolumeMount{{Name: "ferry-bin", MountPath: "/ferry/bin"}},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if len(spec.InitContainers) != 3 {
		t.Fatalf("init containers: %d, want 3", len(spec.InitContainers))
	}
	if diff := cmp.Diff(wantInit, spec.InitContainers[0]); diff != "" {
		t.Errorf("ferry-init (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(pod.Spec.InitContainers[1], spec.InitContainers[2]); diff != "" {
		t.Errorf("init container without references changed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(pod.Spec.Containers[1], spec.Containers[1]); diff != "" {
		t.Errorf("container without references changed (-want +got):\n%s", diff)
	}

	vaultEnv := []corev1.EnvVar{
		{Name: "VAULT_ADDR", Value: "https://vault.example:8200"},
		{Name: "FERRY_VAULT_AUTH_METHOD", Value: "kubernetes"},
		{Name: "FERRY_VAULT_ROLE", Value: "apps"},
		{Name: "FERRY_VAULT_AUTH_PATH", Value: "k8s"},
	}
	mount := []corev1.VolumeMount{{Name: "ferry-bin", MountPath: "/ferry/bin", ReadOnly: true}}
	for _, tc := range []struct {
		got, orig corev1.Container
	}{
		{spec.InitContainers[1], pod.Spec.InitContainers[0]},
		{spec.Containers[0], pod.Spec.Containers[0]},
		{spec.Containers[2], pod.Spec.Containers[2]},
	} {
		want := *tc.orig.DeepCopy()
		want.Command = append([]string{"/ferry/bin/ferry", "exec", "--"}, tc.orig.Command...)
		want.Env = append(want.Env, vaultEnv...)
		want.VolumeMounts = mount
		if diff := cmp.Diff(want, tc.got); diff != "" {
			t.Errorf("container %s (-want +got):\n%s", tc.orig.Name, diff)
		}
	}
	wantVolumes := []corev1.Volume{{Name: "data"}, {Name: "ferry-bin", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory},
	}}}
	if diff := cmp.Diff(wantVolumes, spec.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"keep": "me", inject.AnnotationInjected: "true"}, m.Pod.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if len(m.Warnings) != 0 {
		t.Errorf("warnings: %q", m.Warnings)
	}
}

func TestMutateNoReferences(t *testing.T) {
	for name, pod := range map[string]*corev1.Pod{
		"empty":        {},
		"plain env":    podOf(container("app", nil, "A=vault", "B=Vault:x#y", "C=${HOME}", "D= vault:x#y")),
		"valueFrom":    podOf(corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{}}}}),
		"already done": podOf(container("app", nil, "A=x")),
	} {
		if name == "already done" {
			pod.Annotations = map[string]string{inject.AnnotationInjected: "true"}
		}
		m, err := mutate(t, pod, testConfig)
		if m != nil || err != nil {
			t.Errorf("%s: Mutate = %+v, %v; want nil, nil", name, m, err)
		}
	}
}

// TestMutateEscape: a value with only the escape "$${vault:" is wrapped too, since only
// `ferry exec` turns it into "${vault:".
func TestMutateEscape(t *testing.T) {
	m, err := mutate(t, podOf(container("app", []string{"/app"}, "A=cost: $${vault:x}")), testConfig)
	if err != nil || m == nil {
		t.Fatalf("Mutate: %v, %v", m, err)
	}
}

func TestMutateDenies(t *testing.T) {
	hostPath := podOf(container("app", []string{"/app"}, "A=vault:a#b"))
	hostPath.Spec.Volumes = []corev1.Volume{{Name: "ferry-bin", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	otherMount := podOf(container("app", []string{"/app"}, "A=vault:a#b"))
	otherMount.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "tools", MountPath: "/ferry/bin/"}}
	fakeInit := podOf(container("app", []string{"/app"}, "A=vault:a#b"))
	fakeInit.Spec.InitContainers = []corev1.Container{container("ferry-init", []string{"/evil"})}
	nameTaken := podOf(container("app", []string{"/app"}, "A=vault:a#b"), container("ferry-init", []string{"/x"}))
	initNoCommand := podOf(container("app", []string{"/app"}))
	initNoCommand.Spec.InitContainers = []corev1.Container{container("migrate", nil, "DB=vault:secret/db#pw")}

	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{{
		name: "no command",
		pod:  podOf(container("app", nil, "PLAIN=x", "DB_PASSWORD=vault:secret/data/db#password", "OTHER=vault:a#b")),
		want: "container app: env DB_PASSWORD holds a vault reference, so the container needs an explicit command; " +
			"Ferry does not look up image entrypoints",
	}, {
		name: "empty command",
		pod:  podOf(container("app", []string{}, "DB_PASSWORD=${vault:secret/data/db#password}")),
		want: "container app: env DB_PASSWORD holds a vault reference, so the container needs an explicit command; " +
			"Ferry does not look up image entrypoints",
	}, {
		name: "init container without command",
		pod:  initNoCommand,
		want: "init container migrate: env DB holds a vault reference, so the container needs an explicit command; " +
			"Ferry does not look up image entrypoints",
	}, {
		name: "malformed",
		pod:  podOf(container("app", []string{"/app"}, "DB_PASSWORD=vault:secret/data/db")),
		want: `container app: env DB_PASSWORD: vault reference "vault:secret/data/db": `,
	}, {
		name: "malformed inline",
		pod:  podOf(container("app", []string{"/app"}, "URL=x${vault:secret/../db#pw}")),
		want: `container app: env URL: vault reference "${vault:secret/../db#pw}" at byte 1: `,
	}, {
		name: "both",
		pod:  podOf(container("app", nil, "A=vault:bad", "B=vault:good#key")),
		want: `container app: env A: vault reference "vault:bad": `,
	}, {
		name: "volume name taken",
		pod:  hostPath,
		want: "volume ferry-bin is reserved for Ferry's binary",
	}, {
		name: "mount path taken",
		pod:  otherMount,
		want: "container app: volume mount at /ferry/bin is reserved for Ferry's binary",
	}, {
		name: "init container name taken",
		pod:  fakeInit,
		want: "init container name ferry-init is reserved for Ferry's binary",
	}, {
		name: "container name taken",
		pod:  nameTaken,
		want: "container name ferry-init is reserved for Ferry's binary",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mutate(t, tc.pod, testConfig)
			var deny *inject.DenyError
			if m != nil || !errors.As(err, &deny) {
				t.Fatalf("Mutate = %+v, %v; want a DenyError", m, err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("message:\n got %s\nwant %s...", err, tc.want)
			}
		})
	}

	t.Run("every problem", func(t *testing.T) {
		_, err := inject.Mutate(podOf(container("app", nil, "A=vault:bad", "B=vault:good#key")), testConfig)
		var deny *inject.DenyError
		if !errors.As(err, &deny) {
			t.Fatalf("Mutate: %v", err)
		}
		if len(deny.Problems) != 2 || !errors.Is(deny.Problems[0].Err, ref.ErrMalformed) ||
			!errors.Is(deny.Problems[1].Err, inject.ErrNoCommand) || deny.Problems[1].Env != "A" {
			t.Errorf("problems: %+v", deny.Problems)
		}
	})
}

func TestMutateKeepsUserSettings(t *testing.T) {
	pod := podOf(container("app", []string{"/app"}, "VAULT_ADDR=https://mine:8200", "S=vault:a#b", "FERRY_VAULT_ROLE=mine"))
	m, err := mutate(t, pod, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.EnvVar{
		{Name: "VAULT_ADDR", Value: "https://mine:8200"},
		{Name: "S", Value: "vault:a#b"},
		{Name: "FERRY_VAULT_ROLE", Value: "mine"},
		{Name: "FERRY_VAULT_AUTH_METHOD", Value: "kubernetes"},
		{Name: "FERRY_VAULT_AUTH_PATH", Value: "k8s"},
	}
	if diff := cmp.Diff(want, m.Pod.Spec.Containers[0].Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

func TestMutateOverrides(t *testing.T) {
	envOf := func(m *inject.Mutation) map[string]string {
		out := map[string]string{}
		for _, e := range m.Pod.Spec.Containers[0].Env {
			out[e.Name] = e.Value
		}
		return out
	}
	nsAnnotations := map[string]string{
		inject.AnnotationAddress: "https://ns-vault:8200",
		inject.AnnotationRole:    "ns-role",
	}
	for _, tc := range []struct {
		name   string
		cfg    inject.Config
		ns     map[string]string
		pod    map[string]string
		want   map[string]string
		warned int
	}{{
		name: "config",
		cfg:  testConfig,
		want: map[string]string{"VAULT_ADDR": "https://vault.example:8200", "FERRY_VAULT_ROLE": "apps", "FERRY_VAULT_AUTH_PATH": "k8s"},
	}, {
		name: "namespace beats config",
		cfg:  testConfig,
		ns:   nsAnnotations,
		want: map[string]string{"VAULT_ADDR": "https://ns-vault:8200", "FERRY_VAULT_ROLE": "ns-role", "FERRY_VAULT_AUTH_PATH": "k8s"},
	}, {
		name: "pod beats namespace",
		cfg:  testConfig,
		ns:   nsAnnotations,
		pod:  map[string]string{inject.AnnotationRole: "pod-role", inject.AnnotationAuthPath: "pod-path", inject.AnnotationAddress: ""},
		want: map[string]string{"VAULT_ADDR": "https://ns-vault:8200", "FERRY_VAULT_ROLE": "pod-role", "FERRY_VAULT_AUTH_PATH": "pod-path"},
	}, {
		name:   "nothing configured",
		cfg:    inject.Config{Image: "ferry"},
		want:   map[string]string{"FERRY_VAULT_AUTH_PATH": "kubernetes"},
		warned: 2,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pod := podOf(container("app", []string{"/app"}, "S=vault:a#b"))
			pod.Annotations = tc.pod
			m, err := mutate(t, pod, tc.cfg.WithAnnotations(tc.ns))
			if err != nil {
				t.Fatal(err)
			}
			tc.want["S"] = "vault:a#b"
			tc.want["FERRY_VAULT_AUTH_METHOD"] = "kubernetes"
			if diff := cmp.Diff(tc.want, envOf(m)); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if len(m.Warnings) != tc.warned {
				t.Errorf("warnings: %q, want %d", m.Warnings, tc.warned)
			}
		})
	}
}

func TestMutateReinvocation(t *testing.T) {
	pod := podOf(container("app", []string{"/app"}, "S=vault:a#b"))
	first, err := mutate(t, pod, testConfig)
	if err != nil {
		t.Fatal(err)
	}

	// Another webhook adds a container with a reference and an init container before ours.
	later := first.Pod.DeepCopy()
	later.Spec.Containers = append(later.Spec.Containers, container("late", []string{"/late"}, "T=vault:c#d"))
	later.Spec.InitContainers = slices.Insert(later.Spec.InitContainers, 0, container("other", []string{"/o"}, "U=vault:e#f"))
	second, err := mutate(t, later, testConfig)
	if err != nil || second == nil {
		t.Fatalf("Mutate: %v, %v", second, err)
	}
	if diff := cmp.Diff([]string{"initContainers/other", "containers/late"}, second.Wrapped); diff != "" {
		t.Errorf("Wrapped (-want +got):\n%s", diff)
	}
	spec := second.Pod.Spec
	if len(spec.Volumes) != 1 || len(spec.InitContainers) != 2 || spec.InitContainers[1].Name != "ferry-init" {
		t.Errorf("volumes %v, init containers %v: want one each of Ferry's", spec.Volumes, spec.InitContainers)
	}
	if diff := cmp.Diff(first.Pod.Spec.Containers[0], spec.Containers[0]); diff != "" {
		t.Errorf("wrapped container changed again (-want +got):\n%s", diff)
	}

	// Without the annotation, a mutated Pod needs only the annotation back.
	bare := first.Pod.DeepCopy()
	delete(bare.Annotations, inject.AnnotationInjected)
	third, err := mutate(t, bare, testConfig)
	if err != nil || third == nil || len(third.Patch) != 1 {
		t.Fatalf("Mutate without annotation: %+v, %v; want the annotation only", third, err)
	}
}

func TestMutateWarnings(t *testing.T) {
	pod := podOf(container("app", []string{"/app"}, "S=vault:a#b"))
	pod.Spec.AutomountServiceAccountToken = ptr.To(false)
	m, err := mutate(t, pod, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "automountServiceAccountToken") {
		t.Errorf("warnings: %q", m.Warnings)
	}
}

func TestMutateConfig(t *testing.T) {
	if _, err := inject.Mutate(podOf(), inject.Config{}); err == nil {
		t.Error("Mutate without an image: no error")
	}
	if _, err := inject.Mutate(nil, testConfig); err == nil {
		t.Error("Mutate of nil: no error")
	}
	cfg := testConfig
	cfg.InitCommand = []string{"cp", "/usr/local/bin/ferry", "/ferry/bin/ferry"}
	cfg.ImagePullPolicy = corev1.PullAlways
	cfg.InitSecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}
	cfg.VaultCACert = "-----BEGIN CERTIFICATE-----\n"
	m, err := mutate(t, podOf(container("app", []string{"/app"}, "S=vault:a#b")), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if env := m.Pod.Spec.Containers[0].Env; env[len(env)-1] != (corev1.EnvVar{Name: "VAULT_CACERT_BYTES", Value: cfg.VaultCACert}) {
		t.Errorf("env: %v; want VAULT_CACERT_BYTES last", env)
	}
	init := m.Pod.Spec.InitContainers[0]
	if !slices.Equal(init.Command, cfg.InitCommand) || init.ImagePullPolicy != corev1.PullAlways ||
		*init.SecurityContext.RunAsUser != 1000 || init.SecurityContext.RunAsNonRoot != nil {
		t.Errorf("ferry-init: %+v", init)
	}
}
