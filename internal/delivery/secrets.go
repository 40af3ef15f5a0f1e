package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/secrets/ref"
)

// SecretSource reads Vault for the delivery engine, with the Vault identity of each
// Application.
type SecretSource interface {
	// Resolve reads every reference, one read per distinct path, and returns their values.
	// Errors name the reference and never hold a value.
	Resolve(ctx context.Context, app *v1alpha1.Application, refs []ref.Ref) (Lookup, error)
	// Versions returns the current KV version of each path; zero for a path whose engine has
	// no versions (KV version 1).
	Versions(ctx context.Context, app *v1alpha1.Application, paths []string) (map[string]int, error)
}

// Lookup gives the value of one resolved reference.
type Lookup = func(ref.Ref) (string, error)

// secretRefs is what the references in a revision's objects amount to.
type secretRefs struct {
	// workloads maps each object whose pod template has references to the paths it names.
	workloads map[*unstructured.Unstructured][]string
	// secrets are the Secrets marked ferry.dev/secrets: resolve.
	secrets []*unstructured.Unstructured
	// resolve lists the references those Secrets hold.
	resolve []ref.Ref
}

func (s secretRefs) empty() bool { return len(s.workloads) == 0 && len(s.secrets) == 0 }

// paths lists every path referenced, sorted.
func (s secretRefs) paths() []string {
	var all []string
	for _, ps := range s.workloads {
		all = append(all, ps...)
	}
	for _, r := range s.resolve {
		all = append(all, r.Path)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// findSecretRefs collects the references in the pod templates of objs and in the Secrets
// marked for resolution. A malformed reference is an error naming the object and the field.
func findSecretRefs(objs []*unstructured.Unstructured) (secretRefs, error) {
	found := secretRefs{workloads: map[*unstructured.Unstructured][]string{}}
	for _, o := range objs {
		if isResolvedSecret(o) {
			refs, err := secretManifestRefs(o)
			if err != nil {
				return found, err
			}
			found.secrets = append(found.secrets, o)
			found.resolve = append(found.resolve, refs...)
			continue
		}
		spec, path := podSpecOf(o)
		if spec == nil {
			continue
		}
		var paths []string
		for _, field := range []string{"initContainers", "containers"} {
			containers, _, _ := unstructured.NestedSlice(spec, field)
			for _, c := range containers {
				cm, _ := c.(map[string]any)
				env, _ := cm["env"].([]any)
				for _, e := range env {
					em, _ := e.(map[string]any)
					value, _ := em["value"].(string)
					if !ref.Contains(value) {
						continue
					}
					t, err := ref.Parse(value)
					if err != nil {
						return found, stalled("InvalidSecretReference", "%s: %s.%s[%v].env %v: %w",
							utils.FmtUnstructured(o), path, field, cm["name"], em["name"], err)
					}
					paths = append(paths, ref.Paths(t.Refs())...)
				}
			}
		}
		if len(paths) > 0 {
			slices.Sort(paths)
			found.workloads[o] = slices.Compact(paths)
		}
	}
	return found, nil
}

// isResolvedSecret reports whether o is a Secret whose references Ferry resolves at apply time.
func isResolvedSecret(o *unstructured.Unstructured) bool {
	return o.GetAPIVersion() == "v1" && o.GetKind() == "Secret" &&
		o.GetAnnotations()[v1alpha1.AnnotationSecrets] == v1alpha1.SecretsResolve
}

// secretManifestRefs parses the references in a resolved Secret's data and stringData.
func secretManifestRefs(o *unstructured.Unstructured) ([]ref.Ref, error) {
	var refs []ref.Ref
	err := eachSecretValue(o, func(field, key, value string) (string, error) {
		t, err := ref.Parse(value)
		if err != nil {
			return "", stalled("InvalidSecretReference", "%s: %s.%s: %w", utils.FmtUnstructured(o), field, key, err)
		}
		refs = append(refs, t.Refs()...)
		return value, nil
	})
	return refs, err
}

// eachSecretValue calls fn with every value of a Secret manifest (data decoded from base64)
// and stores what it returns.
func eachSecretValue(o *unstructured.Unstructured, fn func(field, key, value string) (string, error)) error {
	for _, field := range []string{"data", "stringData"} {
		m, _, err := unstructured.NestedMap(o.Object, field)
		if err != nil {
			return stalled("InvalidSecret", "%s: %s: %w", utils.FmtUnstructured(o), field, err)
		}
		for _, key := range slices.Sorted(maps.Keys(m)) {
			s, ok := m[key].(string)
			if !ok {
				return stalled("InvalidSecret", "%s: %s.%s is not a string", utils.FmtUnstructured(o), field, key)
			}
			if field == "data" {
				raw, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return stalled("InvalidSecret", "%s: data.%s is not base64", utils.FmtUnstructured(o), key)
				}
				s = string(raw)
			}
			out, err := fn(field, key, s)
			if err != nil {
				return err
			}
			if field == "data" {
				out = base64.StdEncoding.EncodeToString([]byte(out))
			}
			m[key] = out
		}
		if len(m) > 0 {
			if err := unstructured.SetNestedMap(o.Object, m, field); err != nil {
				return stalled("InvalidSecret", "%s: %s: %w", utils.FmtUnstructured(o), field, err)
			}
		}
	}
	return nil
}

// podSpecOf returns the pod spec of a workload and its field path, or nil.
func podSpecOf(o *unstructured.Unstructured) (map[string]any, string) {
	var fields []string
	switch o.GroupVersionKind().GroupKind().String() {
	case "Deployment.apps", "StatefulSet.apps", "DaemonSet.apps", "ReplicaSet.apps", "Job.batch":
		fields = []string{"spec", "template", "spec"}
	case "CronJob.batch":
		fields = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	case "Pod":
		fields = []string{"spec"}
	default:
		return nil, ""
	}
	spec, ok, _ := unstructured.NestedMap(o.Object, fields...)
	if !ok {
		return nil, ""
	}
	return spec, strings.Join(fields, ".")
}

// applySecrets makes the references of a revision take effect. Each workload's pod template
// gets the annotation ferry.dev/secret-versions, a digest of the versions of the paths it
// references, so a new version of one of them changes that template and rolls exactly those
// workloads. Secrets marked for resolution get their values from Vault.
//
// Only versions go into annotations and status; values go only into the resolved Secrets.
func (r *Reconciler) applySecrets(ctx context.Context, app *v1alpha1.Application, objs []*unstructured.Unstructured) (vaultState, error) {
	found, err := findSecretRefs(objs)
	if err != nil || found.empty() {
		return vaultState{}, err
	}
	if r.opts.Secrets == nil {
		if len(found.secrets) > 0 {
			return vaultState{}, stalled("VaultNotConfigured", "%s asks Ferry to resolve its Vault references, and this Ferry has no vault.address configured",
				utils.FmtUnstructured(found.secrets[0]))
		}
		// References in pod templates are resolved when the Pod starts (ferry exec); without
		// Vault, Ferry only cannot roll the workloads when a secret changes.
		return vaultState{}, nil
	}
	paths := found.paths()
	versions, err := r.opts.Secrets.Versions(ctx, app, paths)
	if err != nil {
		return vaultState{}, waiting("SecretNotResolved", "%w", err)
	}
	state := vaultState{revision: versionDigest(paths, versions), objects: slices.Clone(found.secrets)}
	for o, ps := range found.workloads {
		if err := setTemplateAnnotation(o, v1alpha1.AnnotationSecretVersions, versionDigest(ps, versions)); err != nil {
			return vaultState{}, err
		}
		state.objects = append(state.objects, o)
	}
	if len(found.secrets) > 0 {
		lookup, err := r.opts.Secrets.Resolve(ctx, app, found.resolve)
		if err != nil {
			return vaultState{}, waiting("SecretNotResolved", "%w", err)
		}
		for _, s := range found.secrets {
			err := eachSecretValue(s, func(field, key, value string) (string, error) {
				t, err := ref.Parse(value)
				if err != nil {
					return "", err // parsed once already
				}
				out, err := t.Render(lookup)
				if err != nil {
					return "", waiting("SecretNotResolved", "%s: %s.%s: %w", utils.FmtUnstructured(s), field, key, err)
				}
				return out, nil
			})
			if err != nil {
				return vaultState{}, err
			}
		}
	}
	return state, nil
}

// vaultState is what a revision's Vault references came to.
type vaultState struct {
	// revision digests the versions of every referenced path; "" when there are none.
	revision string
	// objects are those that carry Vault data: resolved Secrets and annotated workloads.
	objects []*unstructured.Unstructured
}

// versionDigest is a short digest of the versions of paths.
func versionDigest(paths []string, versions map[string]int) string {
	h := sha256.New()
	for _, p := range paths {
		fmt.Fprintf(h, "%s@%s\n", p, strconv.Itoa(versions[p]))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// setTemplateAnnotation sets an annotation on the pod template of a workload.
func setTemplateAnnotation(o *unstructured.Unstructured, key, value string) error {
	_, path := podSpecOf(o)
	fields := strings.Split(strings.TrimSuffix(path, ".spec"), ".")
	if path == "spec" { // a bare Pod: its own metadata
		ann := o.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[key] = value
		o.SetAnnotations(ann)
		return nil
	}
	fields = append(fields, "metadata", "annotations", key)
	if err := unstructured.SetNestedField(o.Object, value, fields...); err != nil {
		return stalled("InvalidObject", "%s: %w", utils.FmtUnstructured(o), err)
	}
	return nil
}
