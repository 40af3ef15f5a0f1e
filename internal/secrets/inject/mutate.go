package inject

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/ferrycd/ferry/internal/secrets/ref"
)

// Mutation is what Mutate does to a Pod.
type Mutation struct {
	// Pod is a changed copy of the Pod.
	Pod *corev1.Pod
	// Patch is an RFC 6902 JSON patch that makes the same changes to the Pod's JSON. It only
	// adds and replaces the members it changes, so fields unknown to this build of Ferry
	// survive it.
	Patch []jsonpatch.JsonPatchOperation
	// Wrapped names the containers Mutate changed to run through `ferry exec`, init containers
	// first, each as "initContainers/NAME" or "containers/NAME".
	Wrapped []string
	// Warnings are for the Pod's author: what is likely to keep `ferry exec` from logging in
	// to Vault.
	Warnings []string
}

// ErrNoCommand is the Problem of a container with references but without a command.
var ErrNoCommand = errors.New("holds a vault reference, so the container needs an explicit command; " +
	"Ferry does not look up image entrypoints")

// errReserved is the Problem of a name or path the webhook needs for itself.
var errReserved = errors.New("is reserved for Ferry's binary")

// Problem is one reason the webhook refuses a Pod.
type Problem struct {
	// Container is the container's name, or empty when the problem lies with the Pod.
	Container string
	// Init tells an init container.
	Init bool
	// Env is the environment variable at fault, unless Subject is set.
	Env string
	// Subject is what else is at fault, such as "volume ferry-bin".
	Subject string
	// Err is ErrNoCommand, an error of ref.Parse, or about a reserved name.
	Err error
}

func (p Problem) Error() string {
	var b strings.Builder
	if p.Container != "" {
		if p.Init {
			b.WriteString("init ")
		}
		fmt.Fprintf(&b, "container %s: ", p.Container)
	}
	switch {
	case p.Subject != "":
		fmt.Fprintf(&b, "%s %v", p.Subject, p.Err)
	case errors.Is(p.Err, ErrNoCommand):
		fmt.Fprintf(&b, "env %s %v", p.Env, p.Err)
	default:
		fmt.Fprintf(&b, "env %s: %v", p.Env, p.Err)
	}
	return b.String()
}

func (p Problem) Unwrap() error { return p.Err }

// maxProblems is how many problems a DenyError's message lists.
const maxProblems = 10

// DenyError is Mutate's answer to a Pod the webhook must refuse. Its message quotes
// references as written in the Pod, never other values of its environment; Problems name
// only containers and variables, for logs.
type DenyError struct {
	Problems []Problem
}

func (e *DenyError) Error() string {
	msgs := make([]string, 0, min(len(e.Problems), maxProblems)+1)
	for i, p := range e.Problems {
		if i == maxProblems {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(e.Problems)-maxProblems))
			break
		}
		msgs = append(msgs, p.Error())
	}
	return strings.Join(msgs, "; ")
}

// Mutate returns what the webhook does to pod, given cfg with the overrides of pod's namespace
// already applied (Config.WithAnnotations); Mutate applies those of pod itself. It returns
// nil when pod needs no change: no value of an env entry of a container or init container
// contains a reference (ref.Contains), or the webhook changed pod before. It returns a
// *DenyError when pod must be refused, and another error only for an invalid cfg. pod is
// left as it is.
func Mutate(pod *corev1.Pod, cfg Config) (*Mutation, error) {
	if pod == nil {
		return nil, errors.New("inject: no Pod")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithAnnotations(pod.Annotations).withDefaults()

	initWrap, initProblems := scan(pod.Spec.InitContainers, true)
	wrap, problems := scan(pod.Spec.Containers, false)
	problems = append(initProblems, problems...)
	if len(initWrap) == 0 && len(wrap) == 0 && len(problems) == 0 {
		return nil, nil
	}
	problems = append(problems, reserved(pod)...)
	if len(problems) > 0 {
		return nil, &DenyError{Problems: problems}
	}

	m := &Mutation{Pod: pod.DeepCopy()}
	spec := &m.Pod.Spec
	env := cfg.vaultEnv()
	for _, i := range initWrap {
		m.wrap(&spec.InitContainers[i], "initContainers", i, env)
	}
	for _, i := range wrap {
		m.wrap(&spec.Containers[i], "containers", i, env)
	}
	m.Warnings = warnings(m.Pod, initWrap, wrap)

	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == VolumeName }) {
		vol := corev1.Volume{Name: VolumeName, VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory},
		}}
		m.add("/spec/volumes", len(spec.Volumes), vol)
		spec.Volumes = append(spec.Volumes, vol)
	}
	// Last, since it shifts the indexes of the init containers the patch refers to above.
	if !slices.ContainsFunc(spec.InitContainers, func(c corev1.Container) bool { return c.Name == InitContainerName }) {
		c := cfg.initContainer()
		if len(spec.InitContainers) == 0 {
			m.op("add", "/spec/initContainers", []corev1.Container{c})
		} else {
			m.op("add", "/spec/initContainers/0", c)
		}
		spec.InitContainers = slices.Insert(spec.InitContainers, 0, c)
	}
	if m.Pod.Annotations[AnnotationInjected] != "true" {
		if len(m.Pod.Annotations) == 0 {
			m.op("add", "/metadata/annotations", map[string]string{AnnotationInjected: "true"})
			m.Pod.Annotations = map[string]string{}
		} else {
			m.op("add", "/metadata/annotations/"+escapePointer(AnnotationInjected), "true")
		}
		m.Pod.Annotations[AnnotationInjected] = "true"
	}
	if len(m.Patch) == 0 {
		return nil, nil
	}
	return m, nil
}

// scan returns the indexes of the containers that need `ferry exec` and the problems that
// keep them from getting it.
func scan(containers []corev1.Container, init bool) (wrap []int, problems []Problem) {
	for i, c := range containers {
		firstRef := -1
		for j, e := range c.Env {
			if !ref.Contains(e.Value) {
				continue
			}
			if firstRef < 0 {
				firstRef = j
			}
			if _, err := ref.Parse(e.Value); err != nil {
				problems = append(problems, Problem{Container: c.Name, Init: init, Env: e.Name, Err: err})
			}
		}
		if firstRef < 0 {
			continue
		}
		wrap = append(wrap, i)
		if len(c.Command) == 0 {
			problems = append(problems, Problem{Container: c.Name, Init: init, Env: c.Env[firstRef].Name, Err: ErrNoCommand})
		}
		for _, vm := range c.VolumeMounts {
			if path.Clean(vm.MountPath) == BinDir && vm.Name != VolumeName {
				problems = append(problems, Problem{Container: c.Name, Init: init,
					Subject: "volume mount at " + BinDir, Err: errReserved})
			}
		}
	}
	return wrap, problems
}

// reserved reports the webhook's names that pod uses for something else: ferry-init must be
// an init container mounting ferry-bin at /ferry/bin (as the webhook adds it), ferry-bin an
// emptyDir volume.
func reserved(pod *corev1.Pod) []Problem {
	var problems []Problem
	for _, v := range pod.Spec.Volumes {
		if v.Name == VolumeName && v.EmptyDir == nil {
			problems = append(problems, Problem{Subject: "volume " + VolumeName, Err: errReserved})
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == InitContainerName && !mountsBin(c) {
			problems = append(problems, Problem{Subject: "init container name " + InitContainerName, Err: errReserved})
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == InitContainerName {
			problems = append(problems, Problem{Subject: "container name " + InitContainerName, Err: errReserved})
		}
	}
	return problems
}

// mountsBin reports whether c mounts ferry-bin at BinDir.
func mountsBin(c corev1.Container) bool {
	return slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
		return vm.Name == VolumeName && path.Clean(vm.MountPath) == BinDir
	})
}

// wrap makes c, at index i of the Pod's list, run through `ferry exec` with the binary
// mounted and the Vault settings of env that c does not set itself; what c has already is
// left alone.
func (m *Mutation) wrap(c *corev1.Container, list string, i int, env []corev1.EnvVar) {
	base := "/spec/" + list + "/" + strconv.Itoa(i)
	before := len(m.Patch)
	defer func() {
		if len(m.Patch) > before {
			m.Wrapped = append(m.Wrapped, list+"/"+c.Name)
		}
	}()
	if !slices.Equal(c.Command[:min(len(c.Command), len(ExecPrefix))], ExecPrefix) {
		c.Command = slices.Concat(ExecPrefix, c.Command)
		m.op("replace", base+"/command", c.Command)
	}
	if !mountsBin(*c) {
		vm := corev1.VolumeMount{Name: VolumeName, MountPath: BinDir, ReadOnly: true}
		m.add(base+"/volumeMounts", len(c.VolumeMounts), vm)
		c.VolumeMounts = append(c.VolumeMounts, vm)
	}
	for _, e := range env {
		if !slices.ContainsFunc(c.Env, func(have corev1.EnvVar) bool { return have.Name == e.Name }) {
			m.add(base+"/env", len(c.Env), e)
			c.Env = append(c.Env, e)
		}
	}
}

// add appends value to the array at path, which has n elements; an empty array may be
// missing or null in the JSON, so it is set whole.
func (m *Mutation) add(path string, n int, value any) {
	if n == 0 {
		m.op("add", path, []any{value})
		return
	}
	m.op("add", path+"/-", value)
}

func (m *Mutation) op(op, path string, value any) {
	m.Patch = append(m.Patch, jsonpatch.JsonPatchOperation{Operation: op, Path: path, Value: value})
}

// escapePointer escapes s for a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// warnings are the reasons `ferry exec` in the wrapped containers (by index) of pod is likely
// to fail to log in to Vault; pod has no ferry-init added yet.
func warnings(pod *corev1.Pod, initWrap, wrap []int) []string {
	var out []string
	if t := pod.Spec.AutomountServiceAccountToken; t != nil && !*t {
		out = append(out, "automountServiceAccountToken is false: unless the containers that use vault "+
			"references mount a service account token themselves, ferry exec cannot log in to Vault")
	}
	var containers []corev1.Container
	for _, i := range initWrap {
		containers = append(containers, pod.Spec.InitContainers[i])
	}
	for _, i := range wrap {
		containers = append(containers, pod.Spec.Containers[i])
	}
	for _, v := range []struct{ env, annotation string }{
		{EnvVaultAddr, AnnotationAddress},
		{EnvVaultRole, AnnotationRole},
	} {
		for _, c := range containers {
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == v.env }) {
				out = append(out, fmt.Sprintf("no Vault setting for %s: set the annotation %s on the Pod or its "+
					"namespace, or configure a default in Ferry", v.env, v.annotation))
				break
			}
		}
	}
	return out
}
