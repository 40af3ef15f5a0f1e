package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ApplicationSpec is what a user asks for: the objects at Source, kept in Destination.
type ApplicationSpec struct {
	// Source is where the manifests are.
	Source Source `json:"source"`

	// CredentialsRef names a Secret in the Application's namespace with the credentials for
	// Source.RepoURL: keys username and password (or password alone, a token) for HTTPS, or
	// sshPrivateKey and knownHosts for SSH.
	// +optional
	CredentialsRef *LocalObjectReference `json:"credentialsRef,omitempty"`

	// Destination is where the objects go.
	Destination Destination `json:"destination"`

	// Environment names the environment releases, the timeline, notifications and error
	// linking use, such as production, stage or dev-alice. Default: the destination namespace.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Environment string `json:"environment,omitempty"`

	// SyncPolicy says when and how Ferry syncs.
	// +optional
	SyncPolicy SyncPolicy `json:"syncPolicy,omitempty"`

	// Suspend stops every sync, automated or not, until it is false again.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Notify subscribes chat channels, named in Ferry's configuration, to this Application's
	// events, in addition to the subscriptions of the configuration itself. A channel gets one
	// message per event however many subscriptions match.
	// +kubebuilder:validation:MaxItems=20
	// +optional
	Notify []NotifySubscription `json:"notify,omitempty"`
}

// NotifySubscription sends some of an Application's events to one channel.
type NotifySubscription struct {
	// Channel is the name of a channel in Ferry's configuration.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Channel string `json:"channel"`
	// On lists the event types to send, or patterns such as deploy.*: deploy.started,
	// deploy.succeeded, deploy.failed, deploy.rollback, health.degraded, health.recovered,
	// secret.rotated. Empty means all of them but deploy.started.
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:Pattern=`^(\*|[a-z*]+(\.[a-z_*]+)+)$`
	// +optional
	On []string `json:"on,omitempty"`
}

// Source is a path of a git repository at a revision, rendered one way.
// +kubebuilder:validation:XValidation:rule="(has(self.directory) ? 1 : 0) + (has(self.kustomize) ? 1 : 0) + (has(self.helm) ? 1 : 0) <= 1",message="set at most one of directory, kustomize and helm"
type Source struct {
	// RepoURL is the git repository: https://host/org/repo.git or ssh://git@host/org/repo.git
	// (or the scp-like git@host:org/repo.git).
	// +kubebuilder:validation:MinLength=1
	RepoURL string `json:"repoURL"`

	// Revision is a branch, a tag, or a full or short commit SHA. Default: the repository's
	// default branch.
	// +optional
	Revision string `json:"revision,omitempty"`

	// Path is the directory inside the repository. Default: the repository root.
	// +optional
	Path string `json:"path,omitempty"`

	// Directory renders plain YAML and JSON files. It is the default when no other kind is set.
	// +optional
	Directory *DirectorySource `json:"directory,omitempty"`

	// Kustomize renders Path with kustomize, in process, without plugins.
	// +optional
	Kustomize *KustomizeSource `json:"kustomize,omitempty"`

	// Helm renders the chart at Path with the Helm template engine. The lookup function is not
	// supported: it returns nothing.
	// +optional
	Helm *HelmSource `json:"helm,omitempty"`
}

// DirectorySource renders the YAML (.yaml, .yml) and JSON files of a directory.
type DirectorySource struct {
	// Recurse includes subdirectories.
	// +optional
	Recurse bool `json:"recurse,omitempty"`
	// Include keeps only files matching one of these globs, relative to Path.
	// +optional
	Include []string `json:"include,omitempty"`
	// Exclude drops files matching one of these globs, relative to Path.
	// +optional
	Exclude []string `json:"exclude,omitempty"`
}

// KustomizeSource renders a kustomization.
type KustomizeSource struct{}

// HelmSource renders a chart kept in the repository.
type HelmSource struct {
	// ReleaseName is the Helm release name. Default: the Application's name.
	// +optional
	ReleaseName string `json:"releaseName,omitempty"`
	// ValuesFiles are values files relative to Path, merged in order.
	// +optional
	ValuesFiles []string `json:"valuesFiles,omitempty"`
	// Values are inline values, merged over ValuesFiles.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Values *apiextensionsv1.JSON `json:"values,omitempty"`
}

// Destination is the namespace the Application's objects go to.
type Destination struct {
	// Namespace receives namespaced objects that do not name one.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// CreateNamespace creates Namespace when it does not exist.
	// +optional
	CreateNamespace bool `json:"createNamespace,omitempty"`
}

// SyncPolicy says when and how Ferry syncs.
type SyncPolicy struct {
	// Automated syncs every new revision by itself. Without it, the Application shows
	// OutOfSync and waits for `ferry app sync`.
	// +optional
	Automated bool `json:"automated,omitempty"`
	// Prune deletes objects that left git.
	// +optional
	Prune bool `json:"prune,omitempty"`
	// SelfHeal undoes changes made to owned objects outside git.
	// +optional
	SelfHeal bool `json:"selfHeal,omitempty"`
	// Interval is how often git is polled and drift is checked. Default 3m.
	// +kubebuilder:default="3m"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Retry bounds retries of a failed sync.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`
}

// RetryPolicy bounds the retries of a failed sync.
type RetryPolicy struct {
	// Limit is the number of retries; 0 means retry forever.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Limit int32 `json:"limit,omitempty"`
	// Backoff is the wait before the first retry, doubled after each. Default 5s.
	// +optional
	Backoff *metav1.Duration `json:"backoff,omitempty"`
	// MaxBackoff caps the wait. Default 3m.
	// +optional
	MaxBackoff *metav1.Duration `json:"maxBackoff,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// SyncState says whether the cluster matches git.
// +kubebuilder:validation:Enum=Synced;OutOfSync;Unknown
type SyncState string

// The sync states.
const (
	SyncSynced    SyncState = "Synced"
	SyncOutOfSync SyncState = "OutOfSync"
	SyncUnknown   SyncState = "Unknown"
)

// HealthState is the health of an Application: the worst of its objects'.
// +kubebuilder:validation:Enum=Healthy;Progressing;Degraded;Missing;Suspended;Unknown
type HealthState string

// The health states, best first.
const (
	HealthHealthy     HealthState = "Healthy"
	HealthSuspended   HealthState = "Suspended"
	HealthProgressing HealthState = "Progressing"
	HealthMissing     HealthState = "Missing"
	HealthDegraded    HealthState = "Degraded"
	HealthUnknown     HealthState = "Unknown"
)

// Annotations users and the ferry CLI put on Applications and the objects they own.
const (
	// AnnotationSyncRequested asks for a sync now, also without SyncPolicy.Automated; any new
	// value (`ferry app sync` writes a timestamp) triggers one sync.
	AnnotationSyncRequested = "ferry.dev/sync-requested"
	// AnnotationSyncWave orders the apply of an owned object: ascending integer waves, each
	// healthy before the next starts. Default 0.
	AnnotationSyncWave = "ferry.dev/sync-wave"
	// AnnotationPrune set to "disabled" keeps an owned object in the cluster when it leaves git.
	AnnotationPrune = "ferry.dev/prune"
	// AnnotationHook makes an object a hook that runs at a phase of each sync instead of being
	// kept in sync: PreSync (before anything is applied; a failure stops the sync), PostSync
	// (once everything is healthy; a failure fails the release) or SyncFail (after a failed sync).
	AnnotationHook = "ferry.dev/hook"
	// AnnotationHookDeletePolicy says when a hook object is deleted: BeforeHookCreation (the
	// default: the next sync replaces it), HookSucceeded, HookFailed; comma-separated.
	AnnotationHookDeletePolicy = "ferry.dev/hook-delete-policy"
	// AnnotationRollbackTo pins the Application to a commit SHA from its history (`ferry app
	// rollback`). The next new commit on the tracked revision, or `ferry app resume`, unpins it.
	AnnotationRollbackTo = "ferry.dev/rollback-to"
	// AnnotationSecrets set to SecretsResolve on a Secret manifest makes Ferry resolve the Vault
	// references in its data and stringData when it applies it, so the cluster gets a real
	// Secret. Everywhere else a "vault:" reference is left as text for ferry exec.
	AnnotationSecrets = "ferry.dev/secrets"
	// SecretsResolve is the value of AnnotationSecrets that asks for resolution.
	SecretsResolve = "resolve"
	// AnnotationSecretVersions is set by Ferry on the pod template of every workload whose
	// environment references Vault: a digest of the versions of the paths referenced. A new
	// version changes it, which rolls exactly those workloads.
	AnnotationSecretVersions = "ferry.dev/secret-versions"
	// AnnotationSentryEnv set to "disabled" on an Application, or on one object it renders,
	// stops Ferry from setting SENTRY_RELEASE and SENTRY_ENVIRONMENT in the containers of its
	// pod templates (see ApplicationStatus.WorkloadEnv).
	AnnotationSentryEnv = "ferry.dev/sentry-env"
)

// Condition types of an Application.
const (
	// ConditionReady is True when the last sync applied the wanted revision and everything is healthy.
	ConditionReady = "Ready"
	// ConditionReconciling is True while a sync is in progress.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when retrying cannot help until the spec or the commit changes.
	ConditionStalled = "Stalled"
	// ConditionPinned is True while a rollback holds the Application at an earlier commit.
	ConditionPinned = "Pinned"
)

// SyncStatus is the result of comparing git with the cluster.
type SyncStatus struct {
	// Status is Synced, OutOfSync or Unknown.
	Status SyncState `json:"status"`
	// Revision is the full commit SHA last compared with the cluster.
	// +optional
	Revision string `json:"revision,omitempty"`
}

// HealthStatus is an Application's health with the reason when it is not Healthy.
type HealthStatus struct {
	// Status is the worst health of the owned objects.
	Status HealthState `json:"status"`
	// Message names the object that made the status and why.
	// +optional
	Message string `json:"message,omitempty"`
	// LastTransitionTime is when Status last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
	// DegradedSince is when the Application at rest turned Degraded, kept until it is Healthy
	// again (through Progressing, say, during a rollout) or a sync succeeds; the recovery is
	// notified once, paired with it.
	// +optional
	DegradedSince *metav1.Time `json:"degradedSince,omitempty"`
}

// ObjectRef identifies one object an Application owns.
type ObjectRef struct {
	Group string `json:"group"`
	// Version is the API version the object was applied with.
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// HistoryEntry is one finished sync.
type HistoryEntry struct {
	// ID counts syncs of this Application, from 1.
	ID int64 `json:"id"`
	// Revision is the full commit SHA that was synced.
	Revision string `json:"revision"`
	// Generation is the Application's metadata.generation that was synced.
	Generation int64 `json:"generation"`
	// DeployedAt is when the sync finished.
	DeployedAt metav1.Time `json:"deployedAt"`
	// Result is succeeded or failed.
	Result string `json:"result"`
	// ReleaseID is the release recorded in Ferry's store for this sync.
	// +optional
	ReleaseID int64 `json:"releaseID,omitempty"`
}

// RollbackStatus records a rollback pin.
type RollbackStatus struct {
	// Revision is the commit the Application is pinned to.
	Revision string `json:"revision"`
	// TrackedHead is the commit the tracked revision pointed at when the pin was set; a
	// different head means a new commit, which ends the pin.
	TrackedHead string `json:"trackedHead"`
	// PinnedAt is when the pin was first seen.
	PinnedAt metav1.Time `json:"pinnedAt"`
}

// WorkloadEnvStatus is the revision Ferry names in SENTRY_RELEASE of an Application's
// workloads, with what its rendered objects looked like.
type WorkloadEnvStatus struct {
	// Revision is the full commit SHA whose release name, APP@SHORT_SHA, the workloads carry:
	// that of the successful sync that last changed the rendered objects.
	Revision string `json:"revision"`
	// Digest is the SHA-256, in hex, of the rendered objects of Revision before Ferry set its
	// variables in them: a later revision that renders the same keeps Revision.
	Digest string `json:"digest"`
}

// ApplicationStatus is what Ferry observed and did.
type ApplicationStatus struct {
	// ObservedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions are Ready, Reconciling and Stalled.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Sync compares git with the cluster.
	// +optional
	Sync SyncStatus `json:"sync,omitempty"`
	// Health is the worst health of the owned objects.
	// +optional
	Health HealthStatus `json:"health,omitempty"`
	// Inventory lists the objects the Application owns, for pruning.
	// +optional
	Inventory []ObjectRef `json:"inventory,omitempty"`
	// History lists the last 10 syncs, newest first.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	History []HistoryEntry `json:"history,omitempty"`
	// LastSyncedAt is when the last sync finished.
	// +optional
	LastSyncedAt *metav1.Time `json:"lastSyncedAt,omitempty"`
	// Rollback is set while a rollback pins the Application to an earlier commit.
	// +optional
	Rollback *RollbackStatus `json:"rollback,omitempty"`
	// LastHandledSyncRequest is the value of the ferry.dev/sync-requested annotation that the
	// last manual sync answered.
	// +optional
	LastHandledSyncRequest string `json:"lastHandledSyncRequest,omitempty"`
	// SecretsRevision is a digest of the versions of every Vault path the applied revision
	// references; when it changes, Ferry rolls the workloads concerned. Empty when nothing
	// references Vault.
	// +optional
	SecretsRevision string `json:"secretsRevision,omitempty"`
	// WorkloadEnv is the revision named in the SENTRY_RELEASE variable Ferry sets in the
	// containers it deploys, and the digest of the objects it rendered. A commit that leaves
	// the Application's rendered objects as they were, such as one to another app of a
	// monorepo, keeps the revision, so it changes no pod template and restarts nothing.
	// Written by successful syncs only.
	// +optional
	WorkloadEnv *WorkloadEnvStatus `json:"workloadEnv,omitempty"`
}

// Application keeps the objects of a path of a git repository applied to a namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=app;apps,categories=ferry
// +kubebuilder:printcolumn:name="Sync",type=string,JSONPath=`.status.sync.status`
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health.status`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.sync.revision`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ApplicationSpec   `json:"spec,omitempty"`
	Status ApplicationStatus `json:"status,omitempty"`
}

// ApplicationList is a list of Applications.
//
// +kubebuilder:object:root=true
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Application `json:"items"`
}
