package delivery

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/ssa/utils"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/errtrack"
)

// sentryEnvDisabled is the value of v1alpha1.AnnotationSentryEnv that opts out.
const sentryEnvDisabled = "disabled"

// sentryEnv sets the release and environment the Sentry SDKs report in the pod templates of
// objs, app's objects rendered at revision, and returns the state a successful sync records.
//
// The release names the revision of the last sync whose rendered objects differed, not
// revision itself: a commit that renders app's objects as they were (in a monorepo, a commit
// to another app) must not change a pod template, which would restart every Pod of every app
// on every commit. objs must not hold resolved Secret values yet: they are digested.
func sentryEnv(app *v1alpha1.Application, revision string, objs []*unstructured.Unstructured) (v1alpha1.WorkloadEnvStatus, error) {
	digest, err := renderedDigest(objs)
	if err != nil {
		return v1alpha1.WorkloadEnvStatus{}, err
	}
	state := v1alpha1.WorkloadEnvStatus{Revision: revision, Digest: digest}
	if last := app.Status.WorkloadEnv; last != nil && last.Digest == digest && last.Revision != "" {
		state.Revision = last.Revision
	}
	if app.Annotations[v1alpha1.AnnotationSentryEnv] != sentryEnvDisabled {
		injectSentryEnv(objs, errtrack.ReleaseName(app.Name, state.Revision), environment(app))
	}
	return state, nil
}

// injectSentryEnv appends errtrack.EnvRelease and errtrack.EnvEnvironment to the env of every
// container and init container in the pod templates of the workloads in objs: Deployments,
// StatefulSets, DaemonSets, ReplicaSets, CronJobs, and hook Jobs and Pods. A container that sets a variable itself keeps its value, and an object annotated
// ferry.dev/sentry-env: disabled is skipped. So is an object of a shape this does not expect:
// it is left exactly as git has it, for the API server to judge.
func injectSentryEnv(objs []*unstructured.Unstructured, release, environment string) {
	vars := []envVar{{errtrack.EnvRelease, release}, {errtrack.EnvEnvironment, environment}}
	for _, o := range objs {
		// Only the versions whose pod template is where podSpecOf looks: apps/v1, batch/v1, v1.
		if o.GetAnnotations()[v1alpha1.AnnotationSentryEnv] == sentryEnvDisabled || o.GroupVersionKind().Version != "v1" ||
			immutablePodSpec(o) {
			continue
		}
		// spec is a copy, written back only once every container has taken the variables.
		spec, path := podSpecOf(o)
		if spec == nil || !appendEnv(spec, vars) {
			continue
		}
		// podSpecOf read every field on path as a map, so setting it back cannot fail.
		_ = unstructured.SetNestedMap(o.Object, spec, strings.Split(path, ".")...)
	}
}

// immutablePodSpec reports a Job or a bare Pod that Ferry keeps in sync: their pod spec
// cannot change once created, so a new SENTRY_RELEASE would make the next sync of the app fail
// on them. Hooks are replaced at every sync, so they take the variables.
func immutablePodSpec(o *unstructured.Unstructured) bool {
	gvk := o.GroupVersionKind()
	if _, hook := o.GetAnnotations()[v1alpha1.AnnotationHook]; hook {
		return false
	}
	return gvk.Group == "batch" && gvk.Kind == "Job" || gvk.Group == "" && gvk.Kind == "Pod"
}

// envVar is one environment variable Ferry sets.
type envVar struct{ name, value string }

// appendEnv appends vars to the env of the containers and init containers of a pod spec,
// each where the container does not set it already. It reports false at the first field of
// an unexpected type, with spec partly changed.
func appendEnv(spec map[string]any, vars []envVar) bool {
	for _, field := range []string{"initContainers", "containers"} {
		if spec[field] == nil {
			continue
		}
		containers, ok := spec[field].([]any)
		if !ok {
			return false
		}
		for _, c := range containers {
			container, ok := c.(map[string]any)
			if !ok {
				return false
			}
			env, ok := container["env"].([]any)
			if !ok && container["env"] != nil {
				return false
			}
			set := map[string]bool{}
			for _, e := range env {
				entry, ok := e.(map[string]any)
				if !ok {
					return false
				}
				name, _ := entry["name"].(string)
				set[name] = true
			}
			for _, v := range vars {
				if !set[v.name] {
					env = append(env, map[string]any{"name": v.name, "value": v.value})
				}
			}
			container["env"] = env
		}
	}
	return true
}

// renderedDigest is the SHA-256, in hex, of objs in any order: the JSON of each (encoding/json
// sorts map keys, so the same object always encodes the same), sorted by group, kind,
// namespace and name, and by the JSON itself should two objects share all four.
func renderedDigest(objs []*unstructured.Unstructured) (string, error) {
	type entry struct {
		group, kind, namespace, name string
		doc                          []byte
	}
	entries := make([]entry, 0, len(objs))
	for _, o := range objs {
		doc, err := json.Marshal(o.Object)
		if err != nil {
			return "", stalled("InvalidObject", "%s: encode as JSON: %w", utils.FmtUnstructured(o), err)
		}
		gvk := o.GroupVersionKind()
		entries = append(entries, entry{gvk.Group, gvk.Kind, o.GetNamespace(), o.GetName(), doc})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.kind, b.kind),
			cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name), bytes.Compare(a.doc, b.doc))
	})
	h := sha256.New()
	for _, e := range entries {
		// Compact JSON holds no newline, so the separator keeps the objects apart.
		h.Write(e.doc)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
