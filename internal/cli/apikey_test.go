package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/store"
)

// apiKeyCLI runs ferry commands in-process with an environment of its own.
type apiKeyCLI struct {
	t   *testing.T
	env map[string]string
}

// run runs `ferry ARGS...` as Main does and returns its stdout, stderr and error.
func (c apiKeyCLI) run(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, lookupEnv: func(k string) (string, bool) {
		v, ok := c.env[k]
		return v, ok
	}}
	root := newRoot(e)
	root.SetArgs(args)
	err = root.ExecuteContext(c.t.Context())
	c.t.Logf("ferry %s: err %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
	return out.String(), errOut.String(), err
}

var secretLine = regexp.MustCompile(`^ferry_[a-z2-7]{52}\n$`)

// create runs `ferry apikey create` and returns the secret it prints.
func (c apiKeyCLI) create(args ...string) string {
	c.t.Helper()
	stdout, stderr, err := c.run(append([]string{"apikey", "create"}, args...)...)
	if err != nil {
		c.t.Fatalf("apikey create: %v", err)
	}
	if !secretLine.MatchString(stdout) {
		c.t.Fatalf("apikey create printed %q on stdout, want the secret alone", stdout)
	}
	if !strings.Contains(stderr, "cannot show it again") {
		c.t.Errorf("apikey create warned %q, want that the key is shown once", stderr)
	}
	return strings.TrimSpace(stdout)
}

func (c apiKeyCLI) list() []apikey.Key {
	c.t.Helper()
	stdout, _, err := c.run("apikey", "list", "-o", "json")
	if err != nil {
		c.t.Fatalf("apikey list: %v", err)
	}
	var keys []apikey.Key
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
		c.t.Fatalf("apikey list -o json: %v", err)
	}
	return keys
}

// openStore opens the SQLite store at path beside the commands.
func openStore(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), "sqlite://"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestAPIKeyLifecycle creates keys, lists them in every format, and revokes one, checking
// with the store that each key works as its scopes say, and that the store's files hold the
// key's hash but never its secret.
func TestAPIKeyLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	cli := apiKeyCLI{t: t, env: map[string]string{"FERRY_STORE": "sqlite://" + path}}

	before := time.Now()
	writer := cli.create("alertmanager", "--scope", "write", "--expires", "720h")
	admin := cli.create("bootstrap", "--scope", "admin")
	reader := cli.create("dashboards") // read by default

	keys := cli.list()
	var got []string
	for _, k := range keys {
		got = append(got, k.Name+" "+apiKeyScopes(k.Scopes))
	}
	if diff := cmp.Diff([]string{"alertmanager write", "bootstrap admin", "dashboards read"}, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if e := keys[0].ExpiresAt; e == nil || e.Before(before.Add(720*time.Hour)) || e.After(time.Now().Add(720*time.Hour)) {
		t.Errorf("alertmanager expires at %v, want in 720h", e)
	}
	if keys[1].ExpiresAt != nil || !strings.HasPrefix(admin, keys[1].Prefix) {
		t.Errorf("bootstrap key = %+v, want no expiry and the secret's prefix", keys[1])
	}

	db := openStore(t, path)
	for _, tt := range []struct {
		secret string
		scope  apikey.Scope
		allow  bool
	}{
		{writer, apikey.ScopeWrite, true},
		{writer, apikey.ScopeAdmin, false},
		{admin, apikey.ScopeAdmin, true},
		{reader, apikey.ScopeRead, true},
		{reader, apikey.ScopeWrite, false},
	} {
		k, err := db.AuthenticateAPIKey(t.Context(), apikey.Hash(tt.secret), time.Now())
		if err != nil || k.Allows(tt.scope) != tt.allow {
			t.Errorf("key %s: authenticated %v, allows %s = %v; want allowed %v", k.Name, err, tt.scope, k.Allows(tt.scope), tt.allow)
		}
	}

	stdout, _, err := cli.run("apikey", "list")
	if err != nil {
		t.Fatal(err)
	}
	rows := fields(stdout)
	if len(rows) != 4 || strings.Join(rows[0], " ") != "ID NAME PREFIX SCOPES CREATED LAST USED EXPIRES REVOKED" {
		t.Fatalf("apikey list printed:\n%s", stdout)
	}
	// Dates and times are two fields each; a key never revoked shows "-".
	if row := rows[3]; row[1] != "dashboards" || row[2] != keys[2].Prefix || row[3] != "read" || row[len(row)-1] != "-" {
		t.Errorf("row of dashboards = %q", row)
	}
	stdout, _, err = cli.run("apikey", "list", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	var fromYAML []apikey.Key
	if err := yaml.Unmarshal([]byte(stdout), &fromYAML); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cli.list(), fromYAML); diff != "" {
		t.Errorf("list -o yaml differs from -o json (-json +yaml):\n%s", diff)
	}

	stdout, _, err = cli.run("apikey", "revoke", "1")
	if err != nil || !strings.Contains(stdout, "revoked API key 1 \"alertmanager\"") {
		t.Fatalf("apikey revoke 1 = %q, %v", stdout, err)
	}
	if _, _, err := cli.run("apikey", "revoke", keys[2].Prefix); err != nil {
		t.Fatalf("apikey revoke by prefix: %v", err)
	}
	for _, secret := range []string{writer, reader} {
		_, err := db.AuthenticateAPIKey(t.Context(), apikey.Hash(secret), time.Now())
		if !errors.Is(err, apikey.ErrUnauthorized) {
			t.Errorf("a revoked key authenticates: %v", err)
		}
	}
	if _, err := db.AuthenticateAPIKey(t.Context(), apikey.Hash(admin), time.Now()); err != nil {
		t.Errorf("the key not revoked: %v", err)
	}
	stdout, _, err = cli.run("apikey", "list")
	if err != nil {
		t.Fatal(err)
	}
	if rows := fields(stdout); rows[1][len(rows[1])-1] == "-" || rows[2][len(rows[2])-1] != "-" {
		t.Errorf("REVOKED column after revoking key 1 only:\n%s", stdout)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	var stored []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, b...)
	}
	for _, secret := range []string{writer, admin, reader} {
		if !bytes.Contains(stored, apikey.Hash(secret)) {
			t.Errorf("the store's files %v do not hold the hash of a key: not the files the store wrote?", files)
		}
		if bytes.Contains(stored, []byte(secret)) || bytes.Contains(stored, []byte(secret[len(keys[0].Prefix):])) {
			t.Errorf("the store's files hold a secret")
		}
	}
}

// TestAPIKeyFindsStore checks that the commands find the store as ferry server does: from the
// configuration file named by --config or FERRY_CONFIG, from FERRY_STORE, --store and
// --store-file, and as SQLite under the data directory, which they create.
func TestAPIKeyFindsStore(t *testing.T) {
	dir := t.TempDir()
	fromConfig := filepath.Join(dir, "config.db")
	configFile := filepath.Join(dir, "ferry.yaml")
	if err := os.WriteFile(configFile, []byte("store: sqlite://"+fromConfig+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := filepath.Join(dir, "file.db")
	storeFile := filepath.Join(dir, "store-url")
	if err := os.WriteFile(storeFile, []byte("sqlite://"+fromFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "new", "data")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // the database the key lands in
	}{
		{"config flag", nil, []string{"--config", configFile}, fromConfig},
		{"FERRY_CONFIG", map[string]string{"FERRY_CONFIG": configFile}, nil, fromConfig},
		{"store flag beats the file", map[string]string{"FERRY_CONFIG": configFile}, []string{"--store", "sqlite://" + filepath.Join(dir, "flag.db")}, filepath.Join(dir, "flag.db")},
		{"store-file flag", nil, []string{"--store-file", storeFile}, fromFile},
		{"FERRY_DATA_DIR", map[string]string{"FERRY_DATA_DIR": dataDir}, nil, filepath.Join(dataDir, "ferry.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli := apiKeyCLI{t: t, env: tt.env}
			secret := cli.create(append([]string{tt.name}, tt.args...)...)
			k, err := openStore(t, tt.want).AuthenticateAPIKey(t.Context(), apikey.Hash(secret), time.Now())
			if err != nil || k.Name != tt.name {
				t.Errorf("key in %s = %q, %v; want %q", tt.want, k.Name, err, tt.name)
			}
		})
	}
}

func TestAPIKeyBadInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	cli := apiKeyCLI{t: t, env: map[string]string{"FERRY_STORE": "sqlite://" + path}}
	cli.create("kept")
	tests := []struct {
		args []string
		want error // nil: any error will do, such as cobra's
	}{
		{[]string{"apikey", "create", "x", "--scope", "root"}, apikey.ErrInvalid},
		{[]string{"apikey", "create", "x", "--scope", "read,superuser"}, apikey.ErrInvalid},
		{[]string{"apikey", "create", "x", "--expires", "-1h"}, apikey.ErrInvalid},
		{[]string{"apikey", "create", "bad\nname"}, apikey.ErrInvalid},
		{[]string{"apikey", "create", "x", "--expires", "30d"}, nil},
		{[]string{"apikey", "create"}, nil},
		{[]string{"apikey", "list", "-o", "xml"}, nil},
		{[]string{"apikey", "revoke"}, nil},
		{[]string{"apikey", "revoke", "99"}, apikey.ErrNotFound},
		{[]string{"apikey", "revoke", "ferry_nosuchkey"}, apikey.ErrNotFound},
		{[]string{"apikey", "list", "--store", "mysql://db"}, store.ErrInvalidURL},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, _, err := cli.run(tt.args...)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(stdout, "ferry_") {
				t.Errorf("a failed command printed a key: %q", stdout)
			}
		})
	}
	if keys := cli.list(); len(keys) != 1 || keys[0].Name != "kept" || keys[0].RevokedAt != nil {
		t.Errorf("keys after bad input = %+v, want only kept, live", keys)
	}
}
