package source

import (
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		stderr string
		want   error
	}{
		{"fatal: could not read Username for 'https://github.com': terminal prompts disabled", ErrAuth},
		{"remote: Invalid username or password.; fatal: Authentication failed for 'https://github.com/org/repo.git/'", ErrAuth},
		{"fatal: unable to access 'https://host/repo.git/': The requested URL returned error: 403", ErrAuth},
		{"git@github.com: Permission denied (publickey).; fatal: Could not read from remote repository.", ErrAuth},
		{"No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.; Host key verification failed.", ErrAuth},
		{"ERROR: Permission to org/repo.git denied to deploy-key.", ErrAuth},
		{"remote: Repository not found.; fatal: repository 'https://github.com/org/nope.git/' not found", ErrRepositoryNotFound},
		{"fatal: '/srv/nope.git' does not appear to be a git repository", ErrRepositoryNotFound},
		{"fatal: couldn't find remote ref refs/heads/nope", ErrRevisionNotFound},
		{"fatal: remote error: upload-pack: not our ref 0123456789012345678901234567890123456789", ErrRevisionNotFound},
		{"error: Server does not allow request for unadvertised object 0123456789012345678901234567890123456789", ErrRevisionNotFound},
		{"fatal: unable to access 'https://host/r.git/': Failed to connect to host port 443 after 0 ms: Couldn't connect to server", ErrUnavailable},
		{"fatal: unable to access 'https://nohost/r.git/': Could not resolve host: nohost", ErrUnavailable},
		{"fatal: unable to access 'https://host/r.git/': The requested URL returned error: 502", ErrUnavailable},
		{"ssh: connect to host example.com port 22: Connection refused; fatal: Could not read from remote repository.", ErrUnavailable},
		{"ssh: connect to host example.com port 22: Connection timed out", ErrUnavailable},
		{"error: RPC failed; curl 18 transfer closed with outstanding read data remaining; fatal: early EOF", ErrUnavailable},
		{"fatal: the remote end hung up unexpectedly", ErrUnavailable},
		{"fatal: not a git repository: '/data/x'", nil},
	}
	for _, tt := range tests {
		t.Run(tt.stderr, func(t *testing.T) {
			if got := classify(tt.stderr); !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	const password = "p@ss/w0rd+secret"
	r, err := parseRemote("https://github.com/org/repo.git")
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAccess(r, &Credentials{Username: "ferry", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	header := base64.StdEncoding.EncodeToString([]byte("ferry:" + password))
	for _, leak := range []string{password, url.QueryEscape(password), url.PathEscape(password), header} {
		got := a.scrub("remote: bad credentials " + leak + " for you")
		if strings.Contains(got, leak) || !strings.Contains(got, "[redacted]") {
			t.Errorf("scrub left %q in %q", leak, got)
		}
	}
	// The header reaches git through its environment, scoped to the repository.
	want := []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.https://github.com/org/repo.git.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + header,
	}
	if strings.Join(a.env, "\n") != strings.Join(want, "\n") {
		t.Errorf("env:\n%s\nwant:\n%s", strings.Join(a.env, "\n"), strings.Join(want, "\n"))
	}
}

func TestSSHAccess(t *testing.T) {
	r, err := parseRemote("git@github.com:org/repo.git")
	if err != nil {
		t.Fatal(err)
	}
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n-----END OPENSSH PRIVATE KEY-----"
	a, err := newAccess(r, &Credentials{SSHPrivateKey: []byte(key), KnownHosts: []byte("github.com ssh-ed25519 AAAA\n")})
	if err != nil {
		t.Fatal(err)
	}
	var command string
	for _, kv := range a.env {
		if v, ok := strings.CutPrefix(kv, "GIT_SSH_COMMAND="); ok {
			command = v
		}
	}
	for _, opt := range []string{"-F /dev/null", "StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "BatchMode=yes", "IdentityAgent=none"} {
		if !strings.Contains(command, opt) {
			t.Errorf("GIT_SSH_COMMAND %q lacks %s", command, opt)
		}
	}
	if strings.Contains(command, "b3BlbnNz") {
		t.Errorf("GIT_SSH_COMMAND holds the key: %q", command)
	}
	for _, name := range []string{"key", "known_hosts"} {
		fi, err := os.Stat(a.tmp + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if got := a.scrub("key line b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB here"); strings.Contains(got, "b3BlbnNz") {
		t.Errorf("scrub left the key in %q", got)
	}
	a.close()
	if _, err := os.Stat(a.tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("close left %s: %v", a.tmp, err)
	}
}

func TestLastLines(t *testing.T) {
	got := lastLines("Cloning...\r\nremote: Counting objects: 1\rremote: done\nhint: do this\n\nerror: one\nfatal: two\n")
	if want := "remote: done; error: one; fatal: two"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
