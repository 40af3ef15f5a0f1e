package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ferrycd/ferry/internal/secrets/ref"
)

// Sentinel errors, for errors.Is.
var (
	// ErrNotFound: no secret at the path, or not at the version asked for.
	ErrNotFound = errors.New("no secret")
	// ErrNoKey: the secret has no such key.
	ErrNoKey = errors.New("no key")
	// ErrPermissionDenied: Vault refused the login or the read (HTTP 403).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnreachable: Vault did not answer, after the retries.
	ErrUnreachable = errors.New("cannot reach Vault")
	// ErrUnsupported: the path is not in a KV secrets engine, or asks a KV version 1 engine
	// for a version.
	ErrUnsupported = errors.New("unsupported")
)

// Error is a failure to resolve one reference.
type Error struct {
	Ref ref.Ref
	Err error
}

func (e *Error) Error() string { return e.Ref.String() + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// PathError is a failure about the secret at one path.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *PathError) Unwrap() error { return e.Err }

// Client is a Vault client logged in with one Config. Its methods are safe for concurrent use.
type Client struct {
	cfg Config
	// api carries the token; loginAPI never does, so a login is never sent an old token.
	api, loginAPI *vaultapi.Client

	// loginMu serialises logins after the first.
	loginMu sync.Mutex

	mu sync.Mutex
	// auth is the login's answer, or for the token method one made from a token lookup: it
	// holds the token, its TTL and whether it is renewable.
	auth *vaultapi.Secret
	// creds are the credentials of the logins so far; errors are scrubbed of them.
	creds []string
	// mounts are the KV mounts found so far, by path ("secret/").
	mounts map[string]int

	renewCancel context.CancelFunc
	renewDone   chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

// Login logs in to Vault as cfg.Auth says and returns a client with the token. Its error
// says which method and role failed and why, and never holds a credential:
//
//	vault login (kubernetes, role app): permission denied
func Login(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	api, err := cfg.newAPIClient()
	if err != nil {
		return nil, err
	}
	loginAPI, err := cfg.newAPIClient()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, api: api, loginAPI: loginAPI, mounts: map[string]int{}}
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// loginName describes the login for errors: "kubernetes, role app".
func (c *Client) loginName() string {
	a := c.cfg.Auth
	m := a.method()
	name := m
	if m != MethodToken && a.mountPath() != m {
		name += " at auth/" + a.mountPath()
	}
	if m == MethodKubernetes {
		name += ", role " + a.Role
	}
	return name
}

// login logs in and installs the new token.
func (c *Client) login(ctx context.Context) error {
	auth, err := c.authenticate(ctx)
	if err != nil {
		return fmt.Errorf("vault login (%s): %w", c.loginName(), err)
	}
	c.mu.Lock()
	c.auth = auth
	c.mu.Unlock()
	c.api.SetToken(auth.Auth.ClientToken)
	return nil
}

func (c *Client) authenticate(ctx context.Context) (*vaultapi.Secret, error) {
	a := c.cfg.Auth
	switch a.method() {
	case MethodToken:
		token, err := c.credential(a.Token, a.TokenFile, "token")
		if err != nil {
			return nil, err
		}
		if token == "" {
			return nil, fmt.Errorf("token file %s is empty", a.TokenFile)
		}
		// The lookup proves the token valid and tells its TTL, for renewal.
		c.api.SetToken(token)
		s, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return nil, c.describe(err)
		}
		if s == nil {
			return nil, errors.New("empty answer to the token lookup")
		}
		ttl, _ := s.TokenTTL()
		renewable, _ := s.TokenIsRenewable()
		return &vaultapi.Secret{Auth: &vaultapi.SecretAuth{
			ClientToken: token, Renewable: renewable, LeaseDuration: int(ttl / time.Second),
		}}, nil

	case MethodKubernetes:
		jwtFile := a.JWTFile
		if jwtFile == "" {
			jwtFile = DefaultJWTFile
		}
		jwt, err := c.credential(a.JWT, jwtFile, "ServiceAccount token")
		if err != nil {
			return nil, err
		}
		if jwt == "" {
			return nil, fmt.Errorf("ServiceAccount token file %s is empty", jwtFile)
		}
		return c.loginWrite(ctx, map[string]any{"role": a.Role, "jwt": jwt})

	case MethodAppRole:
		roleID, err := c.credential(a.RoleID, a.RoleIDFile, "role ID")
		if err != nil {
			return nil, err
		}
		if roleID == "" {
			return nil, fmt.Errorf("role ID file %s is empty", a.RoleIDFile)
		}
		data := map[string]any{"role_id": roleID}
		if a.SecretID != "" || a.SecretIDFile != "" {
			secretID, err := c.credential(a.SecretID, a.SecretIDFile, "secret ID")
			if err != nil {
				return nil, err
			}
			data["secret_id"] = secretID
		}
		return c.loginWrite(ctx, data)
	}
	return nil, fmt.Errorf("unknown auth method %q", a.Method) // validate prevents this
}

// credential returns value, else the trimmed content of file; the result is remembered so
// that errors can be scrubbed of it.
func (c *Client) credential(value, file, what string) (string, error) {
	if value == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			// The error names the file, never its content.
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		value = strings.TrimSpace(string(b))
	}
	c.remember(value)
	return value, nil
}

// remember notes a credential, so that errors are scrubbed of it. Short ones are not: they
// are no real credential, and would garble messages.
func (c *Client) remember(cred string) {
	if len(cred) < 8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.creds, cred) {
		c.creds = append(c.creds, cred)
	}
}

// loginWrite posts data to the auth method's login endpoint.
func (c *Client) loginWrite(ctx context.Context, data map[string]any) (*vaultapi.Secret, error) {
	s, err := c.loginAPI.Logical().WriteWithContext(ctx, "auth/"+c.cfg.Auth.mountPath()+"/login", data)
	if err != nil {
		return nil, c.describe(err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, errors.New("no token in the answer to the login")
	}
	c.remember(s.Auth.ClientToken)
	return s, nil
}

// describe turns an error of the api package into one that reads well in a log line and
// holds no credential: "permission denied", "cannot reach Vault at ADDR: ...".
func (c *Client) describe(err error) error {
	if err == nil {
		return nil
	}
	var re *vaultapi.ResponseError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		msgs := c.vaultMessages(re.Errors)
		switch re.StatusCode {
		case http.StatusForbidden:
			msgs = slices.DeleteFunc(msgs, func(m string) bool { return m == "permission denied" })
			if len(msgs) == 0 {
				return ErrPermissionDenied
			}
			return fmt.Errorf("%w: %s", ErrPermissionDenied, strings.Join(msgs, "; "))
		case http.StatusNotFound:
			return ErrNotFound
		}
		status := fmt.Sprintf("%d %s", re.StatusCode, http.StatusText(re.StatusCode))
		if len(msgs) == 0 {
			return fmt.Errorf("status %s from Vault", status)
		}
		return fmt.Errorf("status %s from Vault: %s", status, strings.Join(msgs, "; "))
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w at %s: no answer within %v", ErrUnreachable, c.cfg.Address, c.cfg.timeout())
	case errors.As(err, &ue):
		attempts := ""
		if n := c.cfg.maxRetries(); n > 0 {
			attempts = fmt.Sprintf(" (%d attempts)", n+1)
		}
		if ue.Timeout() {
			return fmt.Errorf("%w at %s: no answer within %v%s", ErrUnreachable, c.cfg.Address, c.cfg.timeout(), attempts)
		}
		return fmt.Errorf("%w at %s: %s%s", ErrUnreachable, c.cfg.Address, c.scrub(ue.Err.Error()), attempts)
	}
	return errors.New(c.scrub(oneLine(err.Error())))
}

// vaultMessages flattens Vault's error messages ("2 errors occurred: * a * b") into a list,
// scrubbed of credentials.
func (c *Client) vaultMessages(errs []string) []string {
	var out []string
	for _, e := range errs {
		if strings.Contains(e, "errors occurred:") || strings.Contains(e, "error occurred:") {
			for line := range strings.SplitSeq(e, "\n") {
				if item, ok := strings.CutPrefix(strings.TrimSpace(line), "* "); ok {
					out = append(out, c.scrub(oneLine(item)))
				}
			}
			continue
		}
		if e = oneLine(e); e != "" {
			out = append(out, c.scrub(e))
		}
	}
	return out
}

// scrub replaces every credential in s.
func (c *Client) scrub(s string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cred := range c.creds {
		s = strings.ReplaceAll(s, cred, "[redacted]")
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// StartRenewal keeps the client logged in until ctx ends or Close is called, in the
// background: it renews the token before it expires, and logs in again when Vault will renew
// it no longer (at its max TTL) or renewal keeps failing. A kubernetes login rereads the
// ServiceAccount token file, which the kubelet rotates. A token of the token method is
// renewed while it can be; it cannot be replaced. A token without a TTL (such as a root
// token) needs nothing. report, when not nil, gets each failure; the client keeps trying,
// with a growing pause up to a minute.
//
// KV secrets have no leases, so there is nothing else to renew.
//
// Calling StartRenewal again while it runs does nothing.
func (c *Client) StartRenewal(ctx context.Context, report func(error)) {
	if report == nil {
		report = func(error) {}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.renewCancel != nil {
		return
	}
	ctx, c.renewCancel = context.WithCancel(ctx)
	c.renewDone = make(chan struct{})
	go c.renew(ctx, report)
}

func (c *Client) renew(ctx context.Context, report func(error)) {
	defer close(c.renewDone)
	const maxPause = time.Minute
	for {
		c.mu.Lock()
		auth := c.auth
		c.mu.Unlock()
		if auth.Auth.LeaseDuration <= 0 {
			<-ctx.Done() // the token never expires
			return
		}
		w, err := c.api.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{
			Secret:        auth,
			RenewBehavior: vaultapi.RenewBehaviorIgnoreErrors,
		})
		if err != nil {
			report(fmt.Errorf("vault token renewal: %w", err))
			return
		}
		go w.Start()
		select {
		case <-ctx.Done():
			w.Stop()
			return
		case err := <-w.DoneCh():
			// nil: the token is about to expire and Vault will not extend it.
			if err != nil {
				report(fmt.Errorf("vault token renewal: %w", c.describe(err)))
			}
		}
		w.Stop()
		if c.cfg.Auth.method() == MethodToken {
			report(errors.New("vault token renewal: the token is about to expire and cannot be renewed; " +
				"a token given with VAULT_TOKEN or VAULT_TOKEN_FILE cannot be replaced"))
			<-ctx.Done()
			return
		}
		for pause := time.Second; ; pause = min(2*pause, maxPause) {
			err := c.relogin(ctx, auth.Auth.ClientToken)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			report(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
		}
	}
}

// Close stops the renewal and, if Login obtained the token by logging in (not from a given
// token), revokes it. It is safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		cancel, done := c.renewCancel, c.renewDone
		c.mu.Unlock()
		if cancel != nil {
			cancel()
			<-done
		}
		if c.cfg.Auth.method() == MethodToken {
			return
		}
		ctx, cancelRevoke := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelRevoke()
		if err := c.api.Auth().Token().RevokeSelfWithContext(ctx, ""); err != nil {
			c.closeErr = fmt.Errorf("vault: revoke token: %w", c.describe(err))
		}
	})
	return c.closeErr
}

// token returns the current token.
func (c *Client) token() string { return c.api.Token() }

// call runs req, which uses the client's token. When Vault says the token is invalid (it
// expired before renewal caught up, or was revoked) and the auth method can log in again,
// call logs in again, once for all concurrent callers, and runs req once more.
func (c *Client) call(ctx context.Context, req func() (*vaultapi.Secret, error)) (*vaultapi.Secret, error) {
	used := c.token()
	s, err := req()
	if err == nil || !invalidToken(err) || c.cfg.Auth.method() == MethodToken {
		return s, err
	}
	if err := c.relogin(ctx, used); err != nil {
		return nil, err
	}
	return req()
}

// relogin logs in again unless another caller replaced the token used already.
func (c *Client) relogin(ctx context.Context, used string) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.token() != used {
		return nil
	}
	return c.login(ctx)
}

// invalidToken reports whether err is Vault refusing a token it does not know (any more).
func invalidToken(err error) bool {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "invalid token") {
			return true
		}
	}
	return false
}
