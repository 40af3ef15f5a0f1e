package source

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// remote is a repository URL split into what git may see and what nobody may.
type remote struct {
	// url is what git is given: an http(s) URL without userinfo, an ssh URL without a
	// password. It holds no secret, so errors and logs show it as is.
	url string
	// key names the mirror: url normalised so trivially different spellings share one.
	key string
	// redacted is url for errors and logs.
	redacted string
	ssh      bool
	// userinfo holds the credentials written into an http(s) URL, or nil.
	userinfo *Credentials
}

// scpLike matches git's user@host:path form; git treats it as ssh when no "/" comes
// before the first ":".
var scpLike = regexp.MustCompile(`^(?:([A-Za-z0-9._~+-]+)@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):([^/].*|/.+)$`)

// parseRemote validates raw and strips its secrets. Its errors never quote raw, which may
// hold a password.
func parseRemote(raw string) (remote, error) {
	if raw == "" {
		return remote{}, fmt.Errorf("empty: %w", ErrInvalidURL)
	}
	for _, c := range raw {
		if c <= ' ' || c == 0x7f {
			return remote{}, fmt.Errorf("control character or space: %w", ErrInvalidURL)
		}
	}
	if !strings.Contains(raw, "://") {
		m := scpLike.FindStringSubmatch(raw)
		if m == nil {
			return remote{}, fmt.Errorf("not a URL: %w", ErrInvalidURL)
		}
		user, host, path := m[1], strings.ToLower(m[2]), strings.TrimRight(m[3], "/")
		if path == "" {
			return remote{}, fmt.Errorf("no repository path: %w", ErrInvalidURL)
		}
		u := host + ":" + path
		if user != "" {
			u = user + "@" + u
		}
		return remote{url: u, key: u, redacted: u, ssh: true}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		return remote{}, fmt.Errorf("cannot parse: %w", ErrInvalidURL)
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "https", "http", "ssh", "git":
	default:
		return remote{}, fmt.Errorf("scheme %q not one of https, http, ssh, git: %w", scheme, ErrInvalidURL)
	}
	if u.Host == "" || u.Opaque != "" {
		return remote{}, fmt.Errorf("no host: %w", ErrInvalidURL)
	}
	if strings.Trim(u.Path, "/") == "" {
		return remote{}, fmt.Errorf("no repository path: %w", ErrInvalidURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return remote{}, fmt.Errorf("query or fragment: %w", ErrInvalidURL)
	}
	r := remote{ssh: scheme == "ssh"}
	clean := &url.URL{Scheme: scheme, Host: strings.ToLower(u.Host), Path: strings.TrimRight(u.Path, "/")}
	switch scheme {
	case "https", "http":
		if u.User != nil {
			// A token is often written as the user (https://TOKEN@host/...): hide it all.
			pass, hasPass := u.User.Password()
			r.userinfo = &Credentials{Username: u.User.Username(), Password: pass}
			if !hasPass {
				r.userinfo = &Credentials{Password: u.User.Username()}
			}
		}
		clean.Host = strings.TrimSuffix(clean.Host, map[string]string{"https": ":443", "http": ":80"}[scheme])
	case "ssh":
		if u.User != nil {
			// The ssh user (usually "git") is not secret; a password in the URL is dropped.
			clean.User = url.User(u.User.Username())
		}
	}
	r.url = clean.String()
	r.key = r.url
	r.redacted = r.url
	return r, nil
}

// mirrorName is the directory name of a remote's mirror: a hash, so no URL (and no
// secret) appears on disk.
func (r remote) mirrorName() string {
	sum := sha256.Sum256([]byte(r.key))
	return hex.EncodeToString(sum[:16]) + ".git"
}

// RedactURL hides the userinfo of a repository URL, which may hold a token, wherever the URL
// is shown: in the error saying parseRemote rejected it, or in the panel. Not knowing how the
// URL may be malformed, it hides everything before the last "@".
func RedactURL(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	if scheme := strings.Index(raw, "://"); scheme >= 0 && scheme < at {
		return raw[:scheme+3] + "redacted" + raw[at:]
	}
	return "redacted" + raw[at:]
}

// normalizeRevision lowercases what can only be a SHA, so "ABC1234" and "abc1234" share
// the same round and answer, and reads "HEAD" (Argo CD's default) as the default branch.
func normalizeRevision(rev string) string {
	if rev == "HEAD" {
		return ""
	}
	if len(rev) >= minShortSHA && isHex(rev) {
		return strings.ToLower(rev)
	}
	return rev
}

const (
	// minShortSHA is git's shortest abbreviation.
	minShortSHA = 4
	// fullSHA is the length of a SHA-1 object name in hex.
	fullSHA = 40
)

func isHex(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return s != ""
}

func isFullSHA(s string) bool { return len(s) == fullSHA && isHex(s) }

// validateRevision applies git check-ref-format's rules, so a revision can never be read
// as an option or a refspec with a source and a destination.
func validateRevision(rev string) error {
	if rev == "" {
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("revision %q %s: %w", rev, why, ErrRevisionNotFound)
	}
	switch {
	case len(rev) > 255:
		return bad("too long")
	case strings.HasPrefix(rev, "-"):
		return bad("starts with -")
	case strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.Contains(rev, "//"):
		return bad("has an empty path component")
	case strings.HasSuffix(rev, ".") || strings.HasSuffix(rev, ".lock"):
		return bad("ends with . or .lock")
	case strings.Contains(rev, "..") || strings.Contains(rev, "@{") || rev == "@":
		return bad("contains .. or @{")
	case strings.ContainsAny(rev, " ~^:?*[\\"):
		return bad("contains one of ~^:?*[\\ or a space")
	}
	for _, part := range strings.Split(rev, "/") {
		if strings.HasPrefix(part, ".") {
			return bad("has a component starting with .")
		}
	}
	for _, c := range rev {
		if c < ' ' || c == 0x7f {
			return bad("contains a control character")
		}
	}
	return nil
}
