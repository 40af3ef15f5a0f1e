package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// logTailBytes is how much of a component's log a start error quotes: enough for the
// final error and the few lines that led to it.
const logTailBytes = 4 << 10

// process is one running component.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // valid after done is closed
}

// startProcess runs bin with args in its own process group, appending its stdout and
// stderr to dir/name.log.
func startProcess(dir, name, bin string, args []string, env []string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	// The child holds its own copy of the descriptor, so ours can go once it has started.
	defer logFile.Close()

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// A group of its own lets Stop signal the component and anything it spawns at once;
	// Pdeathsig kills it when the test binary dies without calling Stop (a panic, a
	// timeout, a kill -9). Go never retires the thread that forked it while the program
	// runs, so the signal comes only with the parent's death.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id, which is also its process group id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exitError reports how the process ended, or nil while it runs.
func (p *process) exitError() error {
	select {
	case <-p.done:
		if p.waitErr == nil {
			return fmt.Errorf("%s exited", p.name)
		}
		return fmt.Errorf("%s exited: %w", p.name, p.waitErr)
	default:
		return nil
	}
}

// stop sends SIGTERM to the process group, waits up to timeout, then sends SIGKILL and
// waits for the process to be reaped. It reports only failures to signal; an exit caused
// by the signals is the expected outcome.
func (p *process) stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(-p.pid(), syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("terminate %s: %w", p.name, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		// Reap stragglers the component may have left in its group.
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		return nil
	case <-timer.C:
	}
	if err := syscall.Kill(-p.pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// tail returns the end of the process's log, trimmed to whole lines.
func (p *process) tail() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	cut := false
	if info, err := f.Stat(); err == nil && info.Size() > logTailBytes {
		if _, err := f.Seek(-logTailBytes, io.SeekEnd); err != nil {
			return fmt.Sprintf("(log unreadable: %v)", err)
		}
		cut = true
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	if i := bytes.IndexByte(b, '\n'); cut && i >= 0 {
		b = b[i+1:] // drop the partial first line
	}
	return strings.TrimRight(string(b), "\n")
}

// waitFor calls check every interval until it returns nil. It gives up when ctx ends or the
// process exits, and then the error carries check's last error and the tail of the log.
func (p *process) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	const interval = 100 * time.Millisecond
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var last error
	for {
		// One attempt may not use up the whole budget: a hung connection must not hide a
		// crashed process.
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(attemptCtx)
		cancel()
		if last == nil {
			return nil
		}
		if err := p.exitError(); err != nil {
			return fmt.Errorf("wait for %s: %w; last check: %w\n--- %s ---\n%s", what, err, last, p.logPath, p.tail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w; last check: %w\n--- %s ---\n%s", what, ctx.Err(), last, p.logPath, p.tail())
		case <-p.done:
		case <-ticker.C:
		}
	}
}

// prober checks health endpoints over plain HTTP or over TLS verified against the plane's CA.
type prober struct {
	transport *http.Transport
	client    *http.Client
}

func newProber(caPEM []byte) (*prober, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("load CA certificate: no certificate in PEM")
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &prober{transport: transport, client: &http.Client{Transport: transport}}, nil
}

// get returns a check that succeeds when url answers 200 OK.
func (pr *prober) get(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := pr.client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
		}
		return nil
	}
}

func (pr *prober) close() { pr.transport.CloseIdleConnections() }

// CPUTimes returns the CPU time (user and system) each running component has used so far,
// by name ("kube-apiserver", "etcd", ...), read from /proc: benchmarks take it before and
// after a run to say which process spent the two cores.
func (cp *ControlPlane) CPUTimes() (map[string]time.Duration, error) {
	times := map[string]time.Duration{}
	for _, p := range cp.procs {
		if p.cmd.Process == nil {
			continue
		}
		d, err := processCPU(p.cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		times[p.name] = d
	}
	return times, nil
}

// processCPU is the utime plus stime of a process, from /proc/PID/stat, in clock ticks of
// 1/100 s (USER_HZ on every Linux architecture Go supports).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces: count from after it.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	// After the name: state is field 3, utime field 14 and stime field 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
