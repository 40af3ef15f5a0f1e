package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ferrycd/ferry/internal/secrets/ref"
)

// maxParallel bounds the requests one Resolve or Fingerprints has in flight.
const maxParallel = 16

// location is where a reference's path lies: a mount and the secret's name in it.
type location struct {
	mount   string // "secret/"
	version int    // of the KV engine: 1 or 2
	name    string // the secret's name in the mount, without a KV version 2 "data/"
}

// readPath is the API path to read the secret at.
func (l location) readPath() string {
	if l.version == 2 {
		return l.mount + "data/" + l.name
	}
	return l.mount + l.name
}

// key returns the readKey of the secret at version (0 for the latest).
func (l location) key(version int) readKey {
	return readKey{path: l.readPath(), version: version, mount: l.mount, kv: l.version}
}

// readKey is one read: a secret at a version (0 for the latest). mount and kv are the
// location's; the same path always has the same.
type readKey struct {
	path    string // location.readPath
	version int
	mount   string
	kv      int
}

// secret is the result of one read.
type secret struct {
	data map[string]any
	// fingerprint is what Fingerprints returns for the secret, for reads of the latest
	// version.
	fingerprint string
	err         error
}

// Values are resolved secrets. Their methods never reveal a value but through Lookup.
type Values struct {
	locs    map[string]location // by path as the references spell it
	secrets map[readKey]*secret
}

// String is all that %v and %s print of v: no value.
func (v *Values) String() string {
	if v == nil {
		return "vault.Values(nil)"
	}
	return fmt.Sprintf("vault.Values(%d secrets)", len(v.secrets))
}

// GoString is all that %#v prints of v.
func (v *Values) GoString() string { return v.String() }

// Lookup returns the value of r, which must be among the references given to Resolve: for
// Template.Render. A string is returned as it is, any other JSON value as its compact JSON.
// The error names the key and the secret, never a value.
func (v *Values) Lookup(r ref.Ref) (string, error) {
	loc, ok := v.locs[r.Path]
	if !ok {
		return "", fmt.Errorf("%s was not resolved", r.Path)
	}
	s, ok := v.secrets[loc.key(r.Version)]
	if !ok {
		return "", fmt.Errorf("version %d of %s was not resolved", r.Version, loc.readPath())
	}
	if s.err != nil {
		return "", s.err
	}
	val, ok := s.data[r.Key]
	if !ok {
		return "", noKey(r.Key, loc, r.Version)
	}
	return stringify(val)
}

// Fingerprint returns what Client.Fingerprints would have returned for path when Resolve
// read it, if Resolve read its latest version.
func (v *Values) Fingerprint(path string) (string, bool) {
	loc, ok := v.locs[path]
	if !ok {
		return "", false
	}
	s, ok := v.secrets[loc.key(0)]
	if !ok || s.err != nil {
		return "", false
	}
	return s.fingerprint, true
}

func noKey(key string, loc location, version int) error {
	at := loc.readPath()
	if version > 0 {
		at = fmt.Sprintf("%s, version %d", at, version)
	}
	return fmt.Errorf("%w %q in the secret at %s", ErrNoKey, key, at)
}

// stringify turns a value of a secret's JSON into the text a reference stands for.
func stringify(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Unreachable for decoded JSON; the error describes the type, not the value.
		return "", fmt.Errorf("encode a %T value as JSON: %w", v, errors.Unwrap(err))
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// Resolve reads the secrets refs name: each distinct secret and version once, in parallel.
// It fails if any reference cannot be resolved, including when its key is missing, with an
// *Error for the first such reference in refs. The mounts it learns about are remembered
// for later calls.
func (c *Client) Resolve(ctx context.Context, refs []ref.Ref) (*Values, error) {
	paths := ref.Paths(refs)
	locs, locErrs := c.locate(ctx, paths)

	var keys []readKey
	seen := map[readKey]bool{}
	for _, r := range refs {
		loc, ok := locs[r.Path]
		if !ok || (r.Version > 0 && loc.version == 1) {
			continue
		}
		k := loc.key(r.Version)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	v := &Values{locs: locs, secrets: c.readAll(ctx, keys)}

	for _, r := range refs {
		if err := locErrs[r.Path]; err != nil {
			return nil, &Error{Ref: r, Err: err}
		}
		loc := locs[r.Path]
		if r.Version > 0 && loc.version == 1 {
			return nil, &Error{Ref: r, Err: fmt.Errorf("%w: %s is a KV version 1 mount, which keeps no versions", ErrUnsupported, loc.mount)}
		}
		s := v.secrets[loc.key(r.Version)]
		if s.err != nil {
			return nil, &Error{Ref: r, Err: s.err}
		}
		if _, ok := s.data[r.Key]; !ok {
			return nil, &Error{Ref: r, Err: noKey(r.Key, loc, r.Version)}
		}
	}
	return v, nil
}

// Fingerprints returns, for each path, a token that changes when the secret at the path
// changes: "v7" for a KV version 2 secret (its current version), the hex SHA-256 of its
// data's canonical JSON for a KV version 1 secret. It reads each distinct secret once, in
// parallel, with the read permission Resolve needs. The error is a *PathError for the
// first path that failed.
func (c *Client) Fingerprints(ctx context.Context, paths []string) (map[string]string, error) {
	locs, locErrs := c.locate(ctx, paths)
	var keys []readKey
	seen := map[readKey]bool{}
	for _, p := range paths {
		if loc, ok := locs[p]; ok {
			k := loc.key(0)
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	secrets := c.readAll(ctx, keys)
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		if err := locErrs[p]; err != nil {
			return nil, &PathError{Path: p, Err: err}
		}
		// A KV version 2 secret whose current version is deleted has an error and a
		// fingerprint.
		s := secrets[locs[p].key(0)]
		if s.fingerprint == "" {
			err := s.err
			if err == nil {
				err = errors.New("no fingerprint") // unreachable: every read sets one
			}
			return nil, &PathError{Path: p, Err: err}
		}
		out[p] = s.fingerprint
	}
	return out, nil
}

// locate finds the mount of each path: from what the client knows, or by asking Vault once
// for each group of paths that share a first segment (mounts do not nest, so a mount holds
// only paths that start with its first segment), groups in parallel.
func (c *Client) locate(ctx context.Context, paths []string) (map[string]location, map[string]error) {
	var order []string
	groups := map[string][]string{}
	for _, p := range paths {
		first, _, _ := strings.Cut(p, "/")
		if _, ok := groups[first]; !ok {
			order = append(order, first)
		}
		groups[first] = append(groups[first], p)
	}
	var mu sync.Mutex
	locs := make(map[string]location, len(paths))
	errs := map[string]error{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallel)
	for _, first := range order {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, p := range groups[first] {
				loc, err := c.locatePath(ctx, p)
				mu.Lock()
				if err != nil {
					errs[p] = err
				} else {
					locs[p] = loc
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return locs, errs
}

// locatePath finds the mount of one path.
func (c *Client) locatePath(ctx context.Context, path string) (location, error) {
	mount, version, ok := c.knownMount(path)
	if !ok {
		var err error
		if mount, version, err = c.findMount(ctx, path); err != nil {
			return location{}, err
		}
	}
	name := strings.TrimPrefix(path+"/", mount)
	name = strings.TrimSuffix(name, "/")
	if version == 2 {
		if rest, ok := strings.CutPrefix(name, "data/"); ok && rest != "" {
			name = rest
		}
	}
	if name == "" {
		return location{}, fmt.Errorf("%w at %s: that is the mount %s itself", ErrNotFound, path, mount)
	}
	return location{mount: mount, version: version, name: name}, nil
}

// knownMount returns the known mount that holds path.
func (c *Client) knownMount(path string) (string, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for m, v := range c.mounts {
		if strings.HasPrefix(path+"/", m) {
			return m, v, true
		}
	}
	return "", 0, false
}

// forgetMount drops what the client knows of mount, after a read in it failed, in case it
// was remounted.
func (c *Client) forgetMount(mount string) {
	c.mu.Lock()
	delete(c.mounts, mount)
	c.mu.Unlock()
}

// findMount asks Vault which mount holds path and which KV version it runs.
func (c *Client) findMount(ctx context.Context, path string) (string, int, error) {
	s, err := c.call(ctx, func() (*vaultapi.Secret, error) {
		return c.api.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+path)
	})
	if err != nil {
		err = c.describe(err)
		if errors.Is(err, ErrPermissionDenied) {
			if strings.Contains(err.Error(), "preflight capability check") {
				// Vault's answer for a path the token may not touch, or that no engine holds.
				return "", 0, fmt.Errorf("%w on %s (or no secrets engine is mounted there)", ErrPermissionDenied, path)
			}
			return "", 0, err
		}
		if errors.Is(err, ErrUnreachable) || errors.Is(err, context.Canceled) {
			return "", 0, err
		}
		return "", 0, fmt.Errorf("find the mount of %s: %w", path, err)
	}
	if s == nil {
		return "", 0, fmt.Errorf("%w at %s: no secrets engine is mounted there", ErrNotFound, path)
	}
	mount, _ := s.Data["path"].(string)
	typ, _ := s.Data["type"].(string)
	if mount == "" || !strings.HasPrefix(path+"/", mount) {
		return "", 0, fmt.Errorf("find the mount of %s: Vault named mount %q", path, mount)
	}
	if typ != "kv" && typ != "generic" {
		return "", 0, fmt.Errorf("%w: %s is in the %s secrets engine mounted at %s; only KV is supported", ErrUnsupported, path, typ, mount)
	}
	version := 1
	if opts, _ := s.Data["options"].(map[string]any); opts != nil && opts["version"] == "2" {
		version = 2
	}
	c.mu.Lock()
	c.mounts[mount] = version
	c.mu.Unlock()
	return mount, version, nil
}

// readAll reads keys, in parallel.
func (c *Client) readAll(ctx context.Context, keys []readKey) map[readKey]*secret {
	out := make(map[readKey]*secret, len(keys))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallel)
	for _, k := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s := c.read(ctx, k)
			mu.Lock()
			out[k] = s
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// read reads one secret. Its errors name the API path.
func (c *Client) read(ctx context.Context, k readKey) *secret {
	s, err := c.call(ctx, func() (*vaultapi.Secret, error) {
		if k.version > 0 {
			return c.api.Logical().ReadWithDataWithContext(ctx, k.path, map[string][]string{"version": {strconv.Itoa(k.version)}})
		}
		return c.api.Logical().ReadWithContext(ctx, k.path)
	})
	fail := func(err error) *secret {
		if !errors.Is(err, ErrUnreachable) && !errors.Is(err, context.Canceled) {
			c.forgetMount(k.mount)
		}
		return &secret{err: err}
	}
	if err != nil {
		err = c.describe(err)
		if errors.Is(err, ErrPermissionDenied) {
			return fail(fmt.Errorf("%w to read %s", err, k.path))
		}
		if errors.Is(err, ErrUnreachable) || errors.Is(err, context.Canceled) {
			return fail(err)
		}
		return fail(fmt.Errorf("read %s: %w", k.path, err))
	}
	if s == nil {
		if k.version > 0 {
			return fail(fmt.Errorf("%w at %s, version %d", ErrNotFound, k.path, k.version))
		}
		return fail(fmt.Errorf("%w at %s", ErrNotFound, k.path))
	}
	if k.kv == 1 {
		fp, err := dataFingerprint(s.Data)
		if err != nil {
			return &secret{err: fmt.Errorf("read %s: %w", k.path, err)}
		}
		return &secret{data: s.Data, fingerprint: fp}
	}

	meta, _ := s.Data["metadata"].(map[string]any)
	current := ""
	if n, ok := meta["version"].(json.Number); ok {
		current = n.String()
	}
	data, _ := s.Data["data"].(map[string]any)
	if data == nil {
		at := k.path
		if current != "" {
			at += ", version " + current
		}
		fp := ""
		if current != "" && k.version == 0 {
			fp = "v" + current
		}
		switch {
		case meta["destroyed"] == true:
			return &secret{err: fmt.Errorf("%w at %s: it is destroyed", ErrNotFound, at), fingerprint: fp}
		case meta["deletion_time"] != nil && meta["deletion_time"] != "":
			return &secret{err: fmt.Errorf("%w at %s: it is deleted", ErrNotFound, at), fingerprint: fp}
		}
		if _, isMap := s.Data["data"].(map[string]any); !isMap && s.Data["data"] != nil {
			return fail(fmt.Errorf("read %s: the answer is not that of a KV version 2 engine", k.path))
		}
		data = map[string]any{}
	}
	if current == "" {
		return &secret{err: fmt.Errorf("read %s: the answer has no version", k.path)}
	}
	return &secret{data: data, fingerprint: "v" + current}
}

// dataFingerprint is the hex SHA-256 of the canonical JSON of a KV version 1 secret's data:
// keys sorted, numbers as Vault sent them, no HTML escaping.
func dataFingerprint(data map[string]any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return "", errors.New("encode the secret as JSON")
	}
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:]), nil
}
