package testenv

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NodeName is the fake node Start registers; kwok plays its kubelet.
const NodeName = "kwok-node-0"

// kwokAnnotation marks the nodes kwok manages; it leaves every other node alone.
const kwokAnnotation = "kwok.x-k8s.io/node"

// stageFiles are the kwok lifecycle stages hack/testbin.sh copies from the kwok module: a
// node turns Ready and keeps its lease, a pod turns Ready (or Succeeded when all its
// containers are jobs that end) and goes away when deleted. The standalone kwok binary
// has none built in.
var stageFiles = []string{
	"kwok-stages/node-initialize.yaml",
	"kwok-stages/node-heartbeat-with-lease.yaml",
	"kwok-stages/pod-ready.yaml",
	"kwok-stages/pod-complete.yaml",
	"kwok-stages/pod-delete.yaml",
}

// nodeLeaseSeconds is how long the fake node's lease lasts; kwok renews it every 10 s.
const nodeLeaseSeconds = 40

// startKwok runs kwok for the annotated nodes, serving /healthz on port.
func (cp *ControlPlane) startKwok(bin, kubeconfig string, port int) (*process, error) {
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + kwokAnnotation + "=fake",
		"--server-address=" + hostPort(port),
		// Without a lease (kwok's default is none) the node lifecycle controller hears from
		// the node only when the heartbeat stage rewrites its status, every five to ten
		// minutes: past the grace period it marks the node, and every Pod on it, not Ready, and
		// the Pods stay so. A plane that ran longer than that lost its Deployments'
		// availability mid-test. kwok renews a lease every quarter of its duration.
		fmt.Sprintf("--node-lease-duration-seconds=%d", nodeLeaseSeconds),
	}
	for _, f := range stageFiles {
		args = append(args, "--config="+filepath.Join(bin, f))
	}
	// kwok also reads $KWOK_WORKDIR/kwok.yaml, by default under $HOME; keep a user's file out.
	env := []string{"KWOK_WORKDIR=" + filepath.Join(cp.Dir, "kwok")}
	return cp.startEnv(bin, "kwok", env, args...)
}

// createNode registers the fake node. A node may carry its status on create, which is how
// kubelets register; kwok keeps the capacity and fills in the conditions.
func createNode(ctx context.Context, client kubernetes.Interface) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("5000"), // room for the delivery benchmark's 1000 apps
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{kwokAnnotation: "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", NodeName, err)
	}
	return nil
}

// nodeReady returns a check that succeeds once the fake node is Ready, carries no taint
// that keeps Pods off it (the node lifecycle controller adds one until it sees Ready) and
// holds its lease.
func nodeReady(client kubernetes.Interface) func(context.Context) error {
	return func(ctx context.Context) error {
		node, err := client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return errors.New("node not Ready")
		}
		for _, t := range node.Spec.Taints {
			if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
				return fmt.Errorf("node tainted %s:%s", t.Key, t.Effect)
			}
		}
		// The lease is what keeps the node Ready once the first status goes stale.
		if _, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, NodeName, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("node lease: %w", err)
		}
		return nil
	}
}

// defaultServiceAccount returns a check that succeeds once default/default exists.
func defaultServiceAccount(client kubernetes.Interface) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return errors.New("not created yet")
		}
		return err
	}
}
