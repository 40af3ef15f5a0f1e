// Package testenv runs a real Kubernetes control plane on the loopback interface for tests
// and the demo: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and kwok
// playing the kubelet of one fake node, so Pods get scheduled and become Ready without a
// container runtime.
//
// The binaries come from hack/testbin.sh (`make testbin`). Every component runs as a child
// process in its own process group with its output in a log file under ControlPlane.Dir;
// Stop ends them all, and they die with the parent if it never gets to call Stop.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// binVersion names the cache directory hack/testbin.sh fills; keep the two in step.
const binVersion = "k8s-v1.37.2-etcd-v3.7.3-kwok-v0.8.0"

const (
	// DefaultStartTimeout bounds Start when its context has no deadline.
	DefaultStartTimeout = 2 * time.Minute
	// DefaultStopTimeout is how long Stop waits after SIGTERM when Options.StopTimeout is zero.
	DefaultStopTimeout = 10 * time.Second
)

// serviceCIDR is the Service IP range; its first address is the apiserver's in-cluster IP.
const serviceCIDR = "10.96.0.0/16"

// ErrNoBinaries means the control plane binaries are not (all) built.
var ErrNoBinaries = errors.New("control plane binaries missing")

// requiredFiles are what Start runs, relative to the binary directory.
var requiredFiles = append([]string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}, stageFiles...)

// BinDir returns the directory holding the control plane binaries: $FERRY_TESTBIN, else
// $KUBEBUILDER_ASSETS, else the cache directory hack/testbin.sh fills. The error wraps
// ErrNoBinaries when the directory lacks any of them.
//
// The directory also serves as controller-runtime envtest assets
// (envtest.Environment{BinaryAssetsDirectory: dir}).
func BinDir() (string, error) {
	dir := os.Getenv("FERRY_TESTBIN")
	if dir == "" {
		dir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if dir == "" {
		cache := os.Getenv("FERRY_CACHE")
		if cache == "" {
			userCache, err := os.UserCacheDir()
			if err != nil {
				return "", fmt.Errorf("%w: locate cache directory: %w; set FERRY_TESTBIN or run \"make testbin\"", ErrNoBinaries, err)
			}
			cache = filepath.Join(userCache, "ferry")
		}
		dir = filepath.Join(cache, "testbin", binVersion)
	}
	return dir, checkBinDir(dir)
}

// checkBinDir reports the first required file dir lacks.
func checkBinDir(dir string) error {
	for _, name := range requiredFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%w: %s has no %s; run \"make testbin\" to build them", ErrNoBinaries, dir, name)
		}
	}
	return nil
}

// Options tunes Start. The zero value is ready to use.
type Options struct {
	// BinDir holds the binaries; empty means the result of BinDir().
	BinDir string
	// Logger receives one line per started component; nil discards.
	Logger *slog.Logger
	// StopTimeout bounds how long Stop waits for each component after SIGTERM before it
	// sends SIGKILL; zero means DefaultStopTimeout.
	StopTimeout time.Duration
}

// Timings records when Start reached each milestone, measured from its call.
type Timings struct {
	// APIReady is when kube-apiserver answered /readyz.
	APIReady time.Duration
	// NodeReady is when the fake node could take Pods: kwok reported it Ready and the
	// controller-manager lifted the not-ready taint the apiserver puts on every new node.
	NodeReady time.Duration
	// Ready is when Start returned.
	Ready time.Duration
}

// ControlPlane is a running control plane. Its fields are read-only.
type ControlPlane struct {
	// Config authenticates as a cluster admin (group system:masters) with a client certificate.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same credentials.
	Kubeconfig string
	// URL is the apiserver's address, https://127.0.0.1:PORT.
	URL string
	// Dir is the temporary directory with etcd's data, credentials and one NAME.log per
	// component; Stop removes it.
	Dir string
	// Timings says how long the start took.
	Timings Timings

	logger      *slog.Logger
	stopTimeout time.Duration
	procs       []*process // in start order

	stopOnce sync.Once
	stopErr  error
}

// Start runs a control plane and returns once it can take Pods: the apiserver is ready,
// the controller-manager and scheduler are healthy, the fake node (NodeName) is Ready and
// the default ServiceAccount exists. ctx bounds the start only; without a deadline, Start
// gives up after DefaultStartTimeout. A start error quotes the end of the failing
// component's log. Call Stop when done.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	begin := time.Now()
	bin := opts.BinDir
	if bin == "" {
		if bin, err = BinDir(); err != nil {
			return nil, err
		}
	} else if err := checkBinDir(bin); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}

	cp := &ControlPlane{logger: opts.Logger, stopTimeout: opts.StopTimeout}
	if cp.logger == nil {
		cp.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cp.stopTimeout <= 0 {
		cp.stopTimeout = DefaultStopTimeout
	}
	if cp.Dir, err = os.MkdirTemp("", "ferry-testenv-"); err != nil {
		return nil, fmt.Errorf("create control plane directory: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
		}
	}()

	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort, kcmPort, schedPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	cp.URL = "https://" + hostPort(apiPort)

	pkiDir := filepath.Join(cp.Dir, "pki")
	if err := os.Mkdir(pkiDir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki directory: %w", err)
	}
	creds, err := newPKI(net.IPv4(10, 96, 0, 1))
	if err != nil {
		return nil, err
	}
	if err := creds.write(pkiDir); err != nil {
		return nil, err
	}
	pkiFile := func(name string) string { return filepath.Join(pkiDir, name) }

	cp.Config = &rest.Config{
		Host: cp.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   creds.ca.certPEM,
			CertData: creds.admin.certPEM,
			KeyData:  creds.admin.keyPEM,
		},
		// client-go's default of 5 requests a second throttles tests that set up fixtures.
		QPS:   50,
		Burst: 100,
	}
	kubeconfigs := map[string]*keyPair{
		"admin":              creds.admin,
		"controller-manager": creds.controllers,
		"scheduler":          creds.scheduler,
		"kwok":               creds.kwok,
	}
	for name, user := range kubeconfigs {
		if err := writeKubeconfig(filepath.Join(cp.Dir, name+".kubeconfig"), cp.URL, creds.ca.certPEM, user); err != nil {
			return nil, err
		}
	}
	cp.Kubeconfig = filepath.Join(cp.Dir, "admin.kubeconfig")

	probes, err := newProber(creds.ca.certPEM)
	if err != nil {
		return nil, err
	}
	defer probes.close()

	// etcd.
	etcdURL := "http://" + hostPort(etcdPort)
	peerURL := "http://" + hostPort(peerPort)
	etcd, err := cp.start(bin, "etcd",
		"--name=default",
		"--data-dir="+filepath.Join(cp.Dir, "etcd"),
		// The plane is thrown away after each run; an fsync per write would only make every
		// test and benchmark wait on the disk.
		"--unsafe-no-fsync",
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		// Durability is worthless for a throwaway store; fsync is most of etcd's latency.
		"--unsafe-no-fsync=true",
	)
	if err != nil {
		return nil, err
	}
	if err := etcd.waitFor(ctx, "etcd health", probes.get(etcdURL+"/health")); err != nil {
		return nil, err
	}

	// kube-apiserver.
	apiserver, err := cp.start(bin, "kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		// The default reconciler refuses a loopback advertise address.
		"--endpoint-reconciler-type=none",
		"--cert-dir="+filepath.Join(cp.Dir, "apiserver"),
		"--tls-cert-file="+pkiFile("serving.crt"),
		"--tls-private-key-file="+pkiFile("serving.key"),
		"--client-ca-file="+pkiFile("ca.crt"),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--service-cluster-ip-range="+serviceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pkiFile("sa.pub"),
		"--service-account-signing-key-file="+pkiFile("sa.key"),
		// A front-proxy CA fills the extension-apiserver-authentication ConfigMap, which
		// the other components read and complain about when it lacks one.
		"--requestheader-client-ca-file="+pkiFile("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+pkiFile("front-proxy-client.crt"),
		"--proxy-client-key-file="+pkiFile("front-proxy-client.key"),
	)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	err = apiserver.waitFor(ctx, "kube-apiserver /readyz", func(ctx context.Context) error {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	cp.Timings.APIReady = time.Since(begin)

	// The rest start together; each is waited for below.
	kcmKubeconfig := filepath.Join(cp.Dir, "controller-manager.kubeconfig")
	kcm, err := cp.start(bin, "kube-controller-manager",
		"--kubeconfig="+kcmKubeconfig,
		"--authentication-kubeconfig="+kcmKubeconfig,
		"--authorization-kubeconfig="+kcmKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(kcmPort),
		"--tls-cert-file="+pkiFile("serving.crt"),
		"--tls-private-key-file="+pkiFile("serving.key"),
		"--client-ca-file="+pkiFile("ca.crt"),
		"--requestheader-client-ca-file="+pkiFile("front-proxy-ca.crt"),
		"--root-ca-file="+pkiFile("ca.crt"),
		"--service-account-private-key-file="+pkiFile("sa.key"),
		"--use-service-account-credentials=true",
		"--cluster-signing-cert-file="+pkiFile("ca.crt"),
		"--cluster-signing-key-file="+pkiFile("ca.key"),
		"--leader-elect=false",
		// The defaults (20 QPS, 5 deployment syncs) would make the control plane, not the code
		// under test, the bottleneck of a benchmark with hundreds of Deployments.
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--concurrent-deployment-syncs=20",
		"--concurrent-replicaset-syncs=20",
		// kwok renews the fake node's lease (every 10 s) from the same two busy cores; under a
		// benchmark's load a renewal can come late, and the default 50s grace would mark the
		// node and its Pods not Ready: a failure of the harness, not of the code under test.
		"--node-monitor-grace-period=5m",
	)
	if err != nil {
		return nil, err
	}
	schedKubeconfig := filepath.Join(cp.Dir, "scheduler.kubeconfig")
	sched, err := cp.start(bin, "kube-scheduler",
		"--kubeconfig="+schedKubeconfig,
		"--authentication-kubeconfig="+schedKubeconfig,
		"--authorization-kubeconfig="+schedKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort),
		"--tls-cert-file="+pkiFile("serving.crt"),
		"--tls-private-key-file="+pkiFile("serving.key"),
		"--client-ca-file="+pkiFile("ca.crt"),
		"--requestheader-client-ca-file="+pkiFile("front-proxy-ca.crt"),
		"--leader-elect=false",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
	)
	if err != nil {
		return nil, err
	}
	kwok, err := cp.startKwok(bin, filepath.Join(cp.Dir, "kwok.kubeconfig"), kwokPort)
	if err != nil {
		return nil, err
	}
	if err := createNode(ctx, client); err != nil {
		return nil, err
	}

	// Fastest first, so each timing measures its own milestone: the controller-manager
	// takes seconds to start its controllers and only then reports healthy.
	if err := kwok.waitFor(ctx, "kwok /healthz", probes.get("http://"+hostPort(kwokPort)+"/healthz")); err != nil {
		return nil, err
	}
	if err := kwok.waitFor(ctx, "node "+NodeName+" Ready", nodeReady(client)); err != nil {
		return nil, err
	}
	cp.Timings.NodeReady = time.Since(begin)
	if err := sched.waitFor(ctx, "kube-scheduler /healthz", probes.get("https://"+hostPort(schedPort)+"/healthz")); err != nil {
		return nil, err
	}
	if err := kcm.waitFor(ctx, "kube-controller-manager /healthz", probes.get("https://"+hostPort(kcmPort)+"/healthz")); err != nil {
		return nil, err
	}
	// The ServiceAccount admission plugin refuses Pods in a namespace until the
	// controller-manager has created its default ServiceAccount.
	if err := kcm.waitFor(ctx, "default ServiceAccount", defaultServiceAccount(client)); err != nil {
		return nil, err
	}
	cp.Timings.Ready = time.Since(begin)
	cp.logger.Info("control plane ready", "url", cp.URL, "dir", cp.Dir,
		"api_ready", cp.Timings.APIReady, "node_ready", cp.Timings.NodeReady, "ready", cp.Timings.Ready)
	return cp, nil
}

// start runs one component from bin and remembers it for Stop.
func (cp *ControlPlane) start(bin, name string, args ...string) (*process, error) {
	return cp.startEnv(bin, name, nil, args...)
}

func (cp *ControlPlane) startEnv(bin, name string, env []string, args ...string) (*process, error) {
	p, err := startProcess(cp.Dir, name, filepath.Join(bin, name), args, env)
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, p)
	cp.logger.Info("component started", "name", name, "pid", p.pid(), "log", p.logPath)
	return p, nil
}

// Stop ends the components in reverse start order, each with SIGTERM and, after the stop
// timeout, SIGKILL, then removes Dir. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		var errs []error
		for i := len(cp.procs) - 1; i >= 0; i-- {
			errs = append(errs, cp.procs[i].stop(cp.stopTimeout))
		}
		if err := os.RemoveAll(cp.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove control plane directory: %w", err))
		}
		cp.stopErr = errors.Join(errs...)
	})
	return cp.stopErr
}

// Main starts a control plane for a package's tests, stores it in *cp, runs the tests and
// stops the plane. Call it from TestMain:
//
//	var cp *testenv.ControlPlane
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &cp)) }
//
// When the plane cannot start, Main prints why and returns 1 without running a test, so
// the package fails rather than skips.
func Main(m *testing.M, cp **ControlPlane) int {
	// controller-runtime's global logger, which ferry server sets to its own: unset, it
	// prints a warning with a stack trace into the tests' output 30 s after it is first used.
	ctrllog.SetLogger(logr.Discard())
	plane, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: start control plane: %v\n", err)
		return 1
	}
	*cp = plane
	code := m.Run()
	if err := plane.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stop control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// freePorts returns n distinct loopback ports that were free a moment ago. Holding all the
// listeners until every port is known keeps the kernel from handing out one port twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// writeKubeconfig writes a self-contained kubeconfig for user at path.
func writeKubeconfig(path, server string, caPEM []byte, user *keyPair) error {
	const name = "ferry-testenv"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: user.certPEM, ClientKeyData: user.keyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}
