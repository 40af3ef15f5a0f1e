// Package webhook verifies and decodes the push webhooks git providers send, so that Ferry
// refreshes the Applications following a repository as soon as it changes rather than at the
// next poll; polling stays the fallback for a webhook that never arrives.
//
// GitHub, GitLab and Gitea are understood; Forgejo speaks Gitea's dialect and is reported as
// "gitea". Parse is pure: it turns a request into a Push or into an error wrapping one of the
// Err values, which Handler maps onto an HTTP status. What a Push refreshes is the caller's
// business.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultMaxBytes bounds a webhook body when Parse is given no bound and in Handler. GitHub caps
// its payloads at 25 MB but a push over 5 MiB means thousands of commits listed inline.
const DefaultMaxBytes int64 = 5 << 20

// The providers a Push can come from.
const (
	GitHub = "github"
	GitLab = "gitlab"
	Gitea  = "gitea"
)

// Why Parse refuses a request. Every error Parse returns wraps exactly one of these.
var (
	// ErrMethod is a request that is not a POST.
	ErrMethod = errors.New("method not allowed")
	// ErrUnsupported is a request from no provider Ferry knows, or an event name that provider
	// never sends.
	ErrUnsupported = errors.New("unsupported webhook")
	// ErrUnauthorized is a missing or wrong signature or token, or a provider with no secret
	// configured. Its message names the header at fault and never quotes a secret.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrTooLarge is a body over the byte bound.
	ErrTooLarge = errors.New("body too large")
	// ErrMalformed is a push whose body cannot be decoded or lacks a ref or repository URL.
	ErrMalformed = errors.New("malformed payload")
	// ErrPing is GitHub's ping, sent when a hook is created: authentic, nothing to do.
	ErrPing = errors.New("ping")
	// ErrIgnored is an authentic event that is not a push, such as GitHub's "issues".
	ErrIgnored = errors.New("event ignored")
)

// Push is what Ferry needs from a push event.
type Push struct {
	Provider string   // GitHub, GitLab or Gitea
	RepoURLs []string // every clone URL the payload gives (html/clone/ssh/git URLs), for matching
	Ref      string   // "refs/heads/main" or "refs/tags/v1"
	Branch   string   // "main" when Ref is a branch, else ""
	Tag      string   // "v1" when Ref is a tag, else ""
	After    string   // new head SHA; for GitLab the commit checked out, not a tag object
	Deleted  bool     // the ref was deleted; After is then all zeros
}

// Secrets holds what each provider signs its webhooks with (GitLab: the token it sends). An
// empty secret refuses that provider: an unauthenticated webhook would let anyone make Ferry
// fetch at will.
type Secrets struct{ GitHub, GitLab, Gitea string }

func (s Secrets) of(provider string) string {
	switch provider {
	case GitHub:
		return s.GitHub
	case GitLab:
		return s.GitLab
	default:
		return s.Gitea
	}
}

type kind int

const (
	kindOther kind = iota
	kindPush
	kindPing
)

// delivery is what the headers say about a request, before its body is read.
type delivery struct {
	provider string
	event    string
	kind     kind
}

// Parse authenticates r and decodes the push it carries. It reads at most maxBytes of the body
// (DefaultMaxBytes when maxBytes <= 0), and reads it whatever the event, since the signature
// covers the body. Authentication comes before anything the body says, so an unsigned request
// learns nothing but ErrUnauthorized.
func Parse(r *http.Request, secrets Secrets, maxBytes int64) (Push, error) {
	if r.Method != http.MethodPost {
		return Push{}, fmt.Errorf("%w: %q", ErrMethod, clip(r.Method))
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	d, err := classify(r.Header)
	if err != nil {
		return Push{}, err
	}
	secret := secrets.of(d.provider)
	if secret == "" {
		return Push{}, fmt.Errorf("%w: no secret configured for %s webhooks", ErrUnauthorized, d.provider)
	}
	if d.provider == GitLab {
		// The token needs no body; checking it first spares reading one for a stranger.
		if err := verifyToken(r.Header, secret); err != nil {
			return Push{}, err
		}
	}
	body, err := readBody(r, maxBytes)
	if err != nil {
		return Push{}, err
	}
	switch d.provider {
	case GitHub:
		err = verifyHMAC("X-Hub-Signature-256", r.Header.Get("X-Hub-Signature-256"), "sha256=", body, secret)
	case Gitea:
		name := "X-Gitea-Signature"
		if r.Header.Get(name) == "" && r.Header.Get("X-Forgejo-Signature") != "" {
			name = "X-Forgejo-Signature"
		}
		err = verifyHMAC(name, r.Header.Get(name), "", body, secret)
	}
	if err != nil {
		return Push{}, err
	}
	switch d.kind {
	case kindPing:
		return Push{}, fmt.Errorf("%w: %s hook reached Ferry", ErrPing, d.provider)
	case kindOther:
		return Push{}, fmt.Errorf("%w: %s %q is not a push", ErrIgnored, d.provider, d.event)
	}
	return decode(d.provider, r.Header.Get("Content-Type"), body)
}

// classify tells the provider and event from the headers. Gitea also sends X-GitHub-Event
// (and Forgejo X-Gitea-Event) for compatibility, so the most specific header wins.
func classify(h http.Header) (delivery, error) {
	if ev := firstOf(h, "X-Gitea-Event", "X-Forgejo-Event"); ev != "" {
		return hubEvent(Gitea, ev)
	}
	if ev := h.Get("X-Gitlab-Event"); ev != "" {
		switch {
		case ev == "Push Hook" || ev == "Tag Push Hook":
			return delivery{provider: GitLab, event: ev, kind: kindPush}, nil
		case isGitLabEvent(ev):
			return delivery{provider: GitLab, event: ev, kind: kindOther}, nil
		}
		return delivery{}, fmt.Errorf("%w: gitlab event %q", ErrUnsupported, clip(ev))
	}
	if ev := h.Get("X-GitHub-Event"); ev != "" {
		return hubEvent(GitHub, ev)
	}
	return delivery{}, fmt.Errorf("%w: no X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event or X-Forgejo-Event header", ErrUnsupported)
}

// hubEvent classifies a GitHub or Gitea event name: both are lowercase words joined by "_".
func hubEvent(provider, ev string) (delivery, error) {
	if !isHubEvent(ev) {
		return delivery{}, fmt.Errorf("%w: %s event %q", ErrUnsupported, provider, clip(ev))
	}
	d := delivery{provider: provider, event: ev, kind: kindOther}
	switch {
	case ev == "push":
		d.kind = kindPush
	case ev == "ping" && provider == GitHub:
		d.kind = kindPing
	}
	return d, nil
}

func firstOf(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// maxEventLen is longer than any event name a provider sends.
const maxEventLen = 64

// clip shortens a header value an error quotes, so that a stranger's header reaches logs and
// answers only up to a sane length.
func clip(s string) string {
	if len(s) > maxEventLen {
		return s[:maxEventLen] + "..."
	}
	return s
}

func isHubEvent(ev string) bool {
	if len(ev) > maxEventLen {
		return false
	}
	for i := 0; i < len(ev); i++ {
		if c := ev[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// isGitLabEvent accepts the shape of GitLab's event names: "Merge Request Hook", "System Hook".
func isGitLabEvent(ev string) bool {
	if len(ev) > maxEventLen || !strings.HasSuffix(ev, " Hook") {
		return false
	}
	for i := 0; i < len(ev); i++ {
		if c := ev[i]; (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != ' ' {
			return false
		}
	}
	return true
}

// verifyToken compares GitLab's token in constant time. Comparing digests rather than the
// strings themselves keeps the token's length from showing in the timing too.
func verifyToken(h http.Header, secret string) error {
	got := h.Get("X-Gitlab-Token")
	if got == "" {
		return fmt.Errorf("%w: missing X-Gitlab-Token header", ErrUnauthorized)
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return fmt.Errorf("%w: X-Gitlab-Token does not match", ErrUnauthorized)
	}
	return nil
}

// verifyHMAC checks that header value got is prefix followed by the hex HMAC-SHA256 of body.
func verifyHMAC(header, got, prefix string, body []byte, secret string) error {
	if got == "" {
		return fmt.Errorf("%w: missing %s header", ErrUnauthorized, header)
	}
	digest, ok := strings.CutPrefix(got, prefix)
	sig, err := hex.DecodeString(digest)
	if !ok || err != nil || len(sig) != sha256.Size {
		return fmt.Errorf("%w: %s is not %s<hex HMAC-SHA256>", ErrUnauthorized, header, prefix)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return fmt.Errorf("%w: %s does not match the body", ErrUnauthorized, header)
	}
	return nil
}

func readBody(r *http.Request, maxBytes int64) ([]byte, error) {
	if r.ContentLength > maxBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, maxBytes)
	}
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBytes))
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, maxBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrMalformed, err)
	}
	return body, nil
}
