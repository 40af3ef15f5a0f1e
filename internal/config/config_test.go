package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func flagsOf(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	BindFlags(fs, Default())
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, "ferry.yaml", `
listen: 127.0.0.1:1001
data_dir: /from/file
shutdown_timeout: 3s
log:
  level: debug
  format: json
delivery:
  enabled: false
  kubeconfig: /file/kubeconfig
`)
	tests := []struct {
		name  string
		path  string
		env   map[string]string
		flags []string
		want  func(c *Config)
	}{
		{
			name: "defaults only",
			want: func(c *Config) {},
		},
		{
			name: "file over defaults",
			path: file,
			want: func(c *Config) {
				c.Listen, c.DataDir, c.ShutdownTimeout = "127.0.0.1:1001", "/from/file", 3*time.Second
				c.Log = Log{Level: "debug", Format: "json"}
				c.Delivery.Enabled, c.Delivery.Kubeconfig = false, "/file/kubeconfig"
			},
		},
		{
			name: "env over file",
			path: file,
			env:  map[string]string{"FERRY_LISTEN": "127.0.0.1:1002", "FERRY_DELIVERY_ENABLED": "true", "FERRY_LOG_LEVEL": "warn"},
			want: func(c *Config) {
				c.Listen, c.DataDir, c.ShutdownTimeout = "127.0.0.1:1002", "/from/file", 3*time.Second
				c.Log = Log{Level: "warn", Format: "json"}
				c.Delivery.Enabled, c.Delivery.Kubeconfig = true, "/file/kubeconfig"
			},
		},
		{
			name:  "flags over env over file",
			path:  file,
			env:   map[string]string{"FERRY_LISTEN": "127.0.0.1:1002", "FERRY_SHUTDOWN_TIMEOUT": "4s"},
			flags: []string{"--listen", "127.0.0.1:1003", "--delivery=true", "--kubeconfig", "/flag/kc"},
			want: func(c *Config) {
				c.Listen, c.DataDir, c.ShutdownTimeout = "127.0.0.1:1003", "/from/file", 4*time.Second
				c.Log = Log{Level: "debug", Format: "json"}
				c.Delivery.Enabled, c.Delivery.Kubeconfig = true, "/flag/kc"
			},
		},
		{
			name:  "a flag left at its default does not override the file",
			path:  file,
			flags: []string{"--log-format", "json"},
			want: func(c *Config) {
				c.Listen, c.DataDir, c.ShutdownTimeout = "127.0.0.1:1001", "/from/file", 3*time.Second
				c.Log = Log{Level: "debug", Format: "json"}
				c.Delivery.Enabled, c.Delivery.Kubeconfig = false, "/file/kubeconfig"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.path, flagsOf(t, tt.flags...), envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tt.want(&want)
			want.Store = "sqlite://" + filepath.Join(want.DataDir, "ferry.db")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSettingsReachEveryKey proves each Setting's YAML key, environment variable and flag set
// the same field, so the three ways to configure Ferry cannot drift apart.
func TestSettingsReachEveryKey(t *testing.T) {
	for _, s := range Settings {
		t.Run(s.Key, func(t *testing.T) {
			value := "x"
			switch s.field(&Config{}).(type) {
			case *bool:
				value = "true"
			case *int:
				value = "7"
			case *time.Duration:
				value = "7s"
			}
			var viaEnv, viaFlag, viaFile Config
			if err := viaEnv.ApplyEnv(envOf(map[string]string{s.Env(): value})); err != nil {
				t.Fatal(err)
			}
			if err := viaFlag.ApplyFlags(flagsOf(t, "--"+s.Flag+"="+value)); err != nil {
				t.Fatal(err)
			}
			if err := viaFile.decode([]byte(nestedYAML(s.Key, value))); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(viaEnv, viaFlag); diff != "" {
				t.Errorf("env and flag differ (-env +flag):\n%s", diff)
			}
			if diff := cmp.Diff(viaEnv, viaFile); diff != "" {
				t.Errorf("env and file differ (-env +file):\n%s", diff)
			}
			if cmp.Equal(viaEnv, Config{}) {
				t.Errorf("setting %s changed nothing", s.Key)
			}
		})
	}
}

func nestedYAML(key, value string) string {
	parts := strings.Split(key, ".")
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", i) + p + ":")
		if i == len(parts)-1 {
			b.WriteString(" " + value)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags []string
		// want are substrings of the one-line error that name the problem.
		want []string
	}{
		{name: "unknown key", file: "listen: 127.0.0.1:1\nlisten_addr: x\n", want: []string{`unknown key "listen_addr"`, "line 2"}},
		{name: "unknown nested key", file: "log:\n  verbosity: debug\n", want: []string{`unknown key "verbosity"`}},
		{name: "malformed yaml", file: "listen: [\n", want: []string{"ferry.yaml"}},
		{name: "wrong type", file: "shutdown_timeout: soon\n", want: []string{"line 1", "soon", "time.Duration"}},
		{name: "two documents", file: "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", want: []string{"more than one YAML document"}},
		{name: "bad listen", file: "listen: nowhere\n", want: []string{"listen", "nowhere"}},
		{name: "bad level", env: map[string]string{"FERRY_LOG_LEVEL": "loud"}, want: []string{"log.level", "loud"}},
		{name: "bad format", flags: []string{"--log-format", "xml"}, want: []string{"log.format", "xml"}},
		{name: "bad env bool", env: map[string]string{"FERRY_DELIVERY_ENABLED": "yes please"}, want: []string{"FERRY_DELIVERY_ENABLED"}},
		{name: "bad env duration", env: map[string]string{"FERRY_SHUTDOWN_TIMEOUT": "10"}, want: []string{"FERRY_SHUTDOWN_TIMEOUT", "duration"}},
		{name: "negative timeout", flags: []string{"--shutdown-timeout", "-1s"}, want: []string{"shutdown_timeout"}},
		{name: "store and store_file", file: "store: sqlite:///x.db\nstore_file: /x\n", want: []string{"store and store_file are both set"}},
		{name: "bad vault address", file: "vault:\n  address: vault:8200\n", want: []string{"vault.address", "vault:8200"}},
		{name: "bad vault auth", env: map[string]string{"FERRY_VAULT_AUTH_METHOD": "ldap"}, want: []string{"vault.auth_method", "ldap"}},
		{name: "inject without vault", flags: []string{"--inject"}, want: []string{"inject.enabled needs vault.address"}},
		{name: "missing store_file", env: map[string]string{"FERRY_STORE_FILE": "/nonexistent/url"}, want: []string{"store_file", "/nonexistent/url"}},
		{name: "bad panel url", flags: []string{"--panel-url", "ferry.example.com"}, want: []string{"notify", "panel_url"}},
		{name: "channel without receiver", file: "notify:\n  channels:\n  - name: chat\n", want: []string{"notify", "channel chat", "exactly one"}},
		{name: "channel key typo", file: "notify:\n  channels:\n  - name: chat\n    telegram: {chat: 1, token: x}\n", want: []string{`unknown key "chat"`}},
		{name: "two channels one name", file: "notify:\n  channels:\n  - {name: a, slack: {url: https://h.example/x}}\n  - {name: a, slack: {url: https://h.example/y}}\n", want: []string{"channel a", "twice"}},
		{name: "subscription to unknown channel", file: "notify:\n  channels:\n  - {name: a, slack: {url: https://h.example/x}}\n  subscriptions:\n  - {channels: [b]}\n", want: []string{"subscription 1", `"b"`}},
		{name: "template with a typo", file: "notify:\n  channels:\n  - name: a\n    slack: {url: https://h.example/x}\n    templates: {deploy.failed: {title: '{{.Appname}}'}}\n", want: []string{"channel a", "deploy.failed", "Appname"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, "ferry.yaml", tt.file)
			}
			_, err := Load(path, flagsOf(t, tt.flags...), envOf(tt.env))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error has more than one line: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestStoreFile(t *testing.T) {
	const url = "postgres://ferry:s3cret@127.0.0.1:5432/ferry"
	path := writeFile(t, "store-url", url+"\n")
	got, err := Load("", flagsOf(t, "--store-file", path), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.Store != url || got.StoreFile != "" {
		t.Errorf("Store = %q, StoreFile = %q; want %q and empty", got.Store, got.StoreFile, url)
	}
}

func TestMissingConfigFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), flagsOf(t), envOf(nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v, want a not-exist error", err)
	}
}

func TestEmptyConfigFileKeepsDefaults(t *testing.T) {
	got, err := Load(writeFile(t, "ferry.yaml", "# nothing yet\n"), flagsOf(t), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.Listen != Default().Listen {
		t.Errorf("Listen = %q, want the default %q", got.Listen, Default().Listen)
	}
}
