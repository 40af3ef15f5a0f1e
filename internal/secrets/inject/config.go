// Package inject is Ferry's mutating admission webhook for Pods: it makes every container
// whose environment holds a Vault reference (see package ref) run through `ferry exec`, which
// resolves the references and then executes the container's own command.
//
// For such a container the webhook
//
//   - prefixes its command with "/ferry/bin/ferry exec --" and leaves its args alone; a
//     container without an explicit command is refused, since Ferry never asks an image
//     registry for an image's entrypoint;
//   - mounts the in-memory volume "ferry-bin" read-only at /ferry/bin;
//   - adds VAULT_ADDR, FERRY_VAULT_AUTH_METHOD, FERRY_VAULT_ROLE, FERRY_VAULT_AUTH_PATH and
//     VAULT_CACERT_BYTES to its environment, unless the container sets them itself.
//
// The Pod gets the volume and, as its first init container, "ferry-init", which copies the
// ferry binary from Ferry's image into the volume; so init containers can use references too.
//
// The Vault settings come from [Config], overridden by the annotations vault.ferry.dev/address,
// vault.ferry.dev/role and vault.ferry.dev/auth-path of the Pod's namespace, overridden in turn
// by the same annotations on the Pod.
//
// [Mutate] is the pure transformation; [Server] serves it as an admission webhook over TLS with
// a certificate that [CertManager] creates, shares between replicas through a Secret, rotates,
// and keeps in the caBundle of the webhook configuration that [WebhookConfiguration] builds.
package inject

import (
	"errors"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Names the webhook puts into Pods and reads from Pods and namespaces.
const (
	// AnnotationInjected marks a Pod the webhook changed. It is informational: the webhook
	// recognizes its own changes by their content, so a reinvocation changes nothing twice.
	AnnotationInjected = "ferry.dev/secrets-injected"

	// AnnotationAddress, AnnotationRole and AnnotationAuthPath on a namespace or a Pod override
	// Config.VaultAddress, VaultRole and VaultAuthPath; the Pod's win.
	AnnotationAddress  = "vault.ferry.dev/address"
	AnnotationRole     = "vault.ferry.dev/role"
	AnnotationAuthPath = "vault.ferry.dev/auth-path"

	// LabelInject set to InjectDisabled on a namespace keeps the webhook away from its Pods.
	LabelInject    = "vault.ferry.dev/inject"
	InjectDisabled = "disabled"

	// VolumeName is the in-memory volume that carries the ferry binary, mounted at BinDir.
	VolumeName = "ferry-bin"
	// BinDir is where the volume is mounted, in ferry-init and in the wrapped containers.
	BinDir = "/ferry/bin"
	// BinPath is the ferry binary the wrapped containers run.
	BinPath = BinDir + "/ferry"
	// InitContainerName is the init container that fills the volume.
	InitContainerName = "ferry-init"

	// DefaultAuthPath is where Vault mounts the Kubernetes auth method unless told otherwise.
	DefaultAuthPath = "kubernetes"
)

// Environment variables the wrapped containers get; `ferry exec` reads them.
const (
	EnvVaultAddr     = "VAULT_ADDR"
	EnvAuthMethod    = "FERRY_VAULT_AUTH_METHOD"
	EnvVaultRole     = "FERRY_VAULT_ROLE"
	EnvVaultAuthPath = "FERRY_VAULT_AUTH_PATH"
	EnvVaultCACert   = "VAULT_CACERT_BYTES"

	// AuthMethodKubernetes is the only auth method the webhook sets up: the Pod logs in to
	// Vault with its service account token.
	AuthMethodKubernetes = "kubernetes"
)

// ExecPrefix is what the webhook puts before a wrapped container's command.
var ExecPrefix = []string{BinPath, "exec", "--"}

// DefaultInitCommand copies the running ferry binary of Ferry's image (installed at
// /usr/local/bin/ferry) to BinPath with mode 0755.
var DefaultInitCommand = []string{"/usr/local/bin/ferry", "install-binary", BinPath}

// initUser is the user and group ferry-init runs as, the nonroot user of Ferry's image. The
// in-memory volume is world-writable, and the binary it writes is world-readable, so the
// wrapped containers can run it whatever their own user.
const initUser = 65532

// Config is what the webhook injects. Image is required; the zero value of every other field
// means its default.
type Config struct {
	// Image is Ferry's image, which ferry-init runs.
	Image string
	// ImagePullPolicy of ferry-init; empty means IfNotPresent.
	ImagePullPolicy corev1.PullPolicy
	// InitCommand is ferry-init's command; empty means DefaultInitCommand. It must leave an
	// executable ferry binary at BinPath.
	InitCommand []string
	// InitResources are ferry-init's resource requests and limits. A memory limit must leave
	// room for the binary: the volume is in memory and its pages count against the Pod.
	InitResources corev1.ResourceRequirements
	// InitSecurityContext replaces ferry-init's default one, which satisfies the "restricted"
	// Pod Security Standard: non-root user 65532, no privilege escalation, no capabilities,
	// read-only root filesystem, RuntimeDefault seccomp profile.
	InitSecurityContext *corev1.SecurityContext

	// VaultAddress, VaultRole and VaultAuthPath are the defaults of VAULT_ADDR, FERRY_VAULT_ROLE
	// and FERRY_VAULT_AUTH_PATH; the vault.ferry.dev annotations of namespaces and Pods override
	// them. A setting left empty everywhere is not injected (VaultAuthPath defaults to
	// DefaultAuthPath).
	VaultAddress  string
	VaultRole     string
	VaultAuthPath string
	// VaultCACert is the PEM text of the CA certificates that verify Vault's certificate,
	// injected as VAULT_CACERT_BYTES when set.
	VaultCACert string
}

// Validate reports whether c can be injected.
func (c Config) Validate() error {
	if c.Image == "" {
		return errors.New("inject: Config.Image is required")
	}
	return nil
}

// WithAnnotations returns c with the Vault settings that annotations (a namespace's or a Pod's)
// set; an annotation with an empty value sets nothing.
func (c Config) WithAnnotations(annotations map[string]string) Config {
	for key, field := range map[string]*string{
		AnnotationAddress:  &c.VaultAddress,
		AnnotationRole:     &c.VaultRole,
		AnnotationAuthPath: &c.VaultAuthPath,
	} {
		if v := annotations[key]; v != "" {
			*field = v
		}
	}
	return c
}

// withDefaults fills the empty fields that have defaults.
func (c Config) withDefaults() Config {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if len(c.InitCommand) == 0 {
		c.InitCommand = DefaultInitCommand
	}
	if c.VaultAuthPath == "" {
		c.VaultAuthPath = DefaultAuthPath
	}
	return c
}

// initContainer is ferry-init for c.
func (c Config) initContainer() corev1.Container {
	sc := c.InitSecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](initUser),
			RunAsGroup:               ptr.To[int64](initUser),
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}
	return corev1.Container{
		Name:                     InitContainerName,
		Image:                    c.Image,
		ImagePullPolicy:          c.ImagePullPolicy,
		Command:                  slices.Clone(c.InitCommand),
		Resources:                *c.InitResources.DeepCopy(),
		SecurityContext:          sc.DeepCopy(),
		VolumeMounts:             []corev1.VolumeMount{{Name: VolumeName, MountPath: BinDir}},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// vaultEnv is the environment a wrapped container gets, in order, without empty settings.
func (c Config) vaultEnv() []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, kv := range [][2]string{
		{EnvVaultAddr, c.VaultAddress},
		{EnvAuthMethod, AuthMethodKubernetes},
		{EnvVaultRole, c.VaultRole},
		{EnvVaultAuthPath, c.VaultAuthPath},
		{EnvVaultCACert, c.VaultCACert},
	} {
		if kv[1] != "" {
			env = append(env, corev1.EnvVar{Name: kv[0], Value: kv[1]})
		}
	}
	return env
}
