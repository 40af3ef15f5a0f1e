package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// cp is the control plane shared by the package's tests.
var cp *ControlPlane

func TestMain(m *testing.M) { os.Exit(Main(m, &cp)) }

func TestDeploymentBecomesAvailable(t *testing.T) {
	t.Logf("control plane: API ready after %v, node Ready after %v, Start returned after %v",
		cp.Timings.APIReady, cp.Timings.NodeReady, cp.Timings.Ready)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "testenv-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	labels := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// kwok never pulls it.
					Containers: []corev1.Container{{Name: "web", Image: "example.invalid/web:1"}},
				},
			},
		},
	}
	created := time.Now()
	if _, err := client.AppsV1().Deployments(ns.Name).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var last *appsv1.Deployment
	for {
		last, err = client.AppsV1().Deployments(ns.Name).Get(ctx, deploy.Name, metav1.GetOptions{})
		if err == nil && last.Status.AvailableReplicas == 2 && available(last) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Deployment not Available: %v; last get error: %v; status: %+v", ctx.Err(), err, last.Status)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("Deployment Available %v after create", time.Since(created))

	pods, err := client.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, p := range pods.Items {
		nodes = append(nodes, p.Spec.NodeName)
	}
	if diff := cmp.Diff([]string{NodeName, NodeName}, nodes); diff != "" {
		t.Errorf("nodes of the Deployment's pods (-want +got):\n%s", diff)
	}

	var total int
	for _, p := range cp.procs {
		kib, err := rssKiB(p.pid())
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		total += kib
		t.Logf("RSS %-24s %4d MiB", p.name, kib>>10)
	}
	t.Logf("RSS %-24s %4d MiB", "total", total>>10)
}

func available(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// TestNodeLeaseRenewed checks what keeps the fake node, and the Pods on it, Ready however
// long a plane runs: kwok renews the node's lease. Without it the node lifecycle controller
// heard from the node only at the heartbeat stage's rare status writes, and marked every
// Pod not Ready once one came after the grace period.
func TestNodeLeaseRenewed(t *testing.T) {
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	first, err := leases.Get(t.Context(), NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Spec.RenewTime == nil {
		t.Fatal("lease has no renew time")
	}
	// kwok renews every quarter of the lease's duration; allow three durations.
	deadline := time.Now().Add(3 * nodeLeaseSeconds * time.Second)
	for {
		l, err := leases.Get(t.Context(), NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Spec.RenewTime != nil && l.Spec.RenewTime.After(first.Spec.RenewTime.Time) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease renewed last at %v, not since", first.Spec.RenewTime)
		}
		time.Sleep(time.Second)
	}
}

func TestStopLeavesNoProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), DefaultStartTimeout)
	defer cancel()
	plane, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range plane.procs {
		names = append(names, p.name)
	}
	want := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
	if diff := cmp.Diff(want, names); diff != "" {
		_ = plane.Stop()
		t.Fatalf("components (-want +got):\n%s", diff)
	}

	begin := time.Now()
	if err := plane.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(begin))

	for _, p := range plane.procs {
		// Each component leads its own process group; signal 0 to the group probes
		// whether any member is left.
		if err := syscall.Kill(-p.pid(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group of %s (pid %d) still has members: kill -0 = %v", p.name, p.pid(), err)
		}
	}
	if _, err := os.Stat(plane.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat %s after Stop = %v, want not exist", plane.Dir, err)
	}
	if err := plane.Stop(); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
}

func TestStartQuotesFailingComponentLog(t *testing.T) {
	bin := fakeBinDir(t)
	etcd := "#!/bin/sh\necho 'etcdmain: listen tcp: address already in use' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(bin, "etcd"), []byte(etcd), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	plane, err := Start(ctx, Options{BinDir: bin})
	if err == nil {
		_ = plane.Stop()
		t.Fatal("Start with a crashing etcd succeeded")
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("Start error = %v, want etcd's exit status 3", err)
	}
	// The log tail is text for a human, not an error value; look for it in the message.
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start error lacks the tail of etcd's log:\n%v", err)
	}
}

func TestBinDir(t *testing.T) {
	complete := fakeBinDir(t)
	empty := t.TempDir()
	home := t.TempDir()

	tests := []struct {
		name     string
		env      map[string]string
		wantDir  string
		wantMiss bool
	}{
		{
			name:    "FERRY_TESTBIN first",
			env:     map[string]string{"FERRY_TESTBIN": complete, "KUBEBUILDER_ASSETS": empty},
			wantDir: complete,
		},
		{
			name:    "then KUBEBUILDER_ASSETS",
			env:     map[string]string{"KUBEBUILDER_ASSETS": complete},
			wantDir: complete,
		},
		{
			name:     "then FERRY_CACHE",
			env:      map[string]string{"FERRY_CACHE": home},
			wantDir:  filepath.Join(home, "testbin", binVersion),
			wantMiss: true,
		},
		{
			name:     "then the user cache",
			env:      map[string]string{"XDG_CACHE_HOME": home},
			wantDir:  filepath.Join(home, "ferry", "testbin", binVersion),
			wantMiss: true,
		},
		{
			name:     "incomplete directory",
			env:      map[string]string{"FERRY_TESTBIN": empty},
			wantDir:  empty,
			wantMiss: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"FERRY_TESTBIN", "KUBEBUILDER_ASSETS", "FERRY_CACHE", "XDG_CACHE_HOME"} {
				t.Setenv(k, tt.env[k])
			}
			dir, err := BinDir()
			if dir != tt.wantDir {
				t.Errorf("BinDir() dir = %q, want %q", dir, tt.wantDir)
			}
			if got := errors.Is(err, ErrNoBinaries); got != tt.wantMiss {
				t.Errorf("BinDir() error = %v, want ErrNoBinaries: %v", err, tt.wantMiss)
			}
			if !tt.wantMiss && err != nil {
				t.Errorf("BinDir() error = %v", err)
			}
		})
	}
}

func TestStartWithoutBinaries(t *testing.T) {
	_, err := Start(t.Context(), Options{BinDir: t.TempDir()})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("Start error = %v, want ErrNoBinaries", err)
	}
}

// fakeBinDir returns a directory with an empty file for each required one.
func fakeBinDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range requiredFiles {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestProcessCPU reads this process's CPU time the way CPUTimes reads the components'.
func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("CPU time %v after spinning, %v before: want it to grow", after, before)
	}
}
