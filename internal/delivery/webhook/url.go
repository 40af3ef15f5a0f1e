package webhook

import (
	"net/url"
	"strings"
)

// Matches reports whether repoURL (as an Application writes it) names one of p.RepoURLs. The
// comparison ignores case: GitHub, GitLab and Gitea all resolve owner and repository names
// case-insensitively, and a needless refresh costs less than one missed until the next poll.
func (p Push) Matches(repoURL string) bool {
	want := NormalizeURL(repoURL)
	if want == "" {
		return false
	}
	for _, u := range p.RepoURLs {
		if strings.EqualFold(NormalizeURL(u), want) {
			return true
		}
	}
	return false
}

// NormalizeURL returns the form of a repository URL used to match webhooks against
// Applications: "host/org/repo", with the host lowercased and the scheme, userinfo, port,
// query, trailing "/" and ".git" dropped. So https://host/org/repo.git, ssh://git@host:22/org/repo,
// git@host:org/repo and host/org/repo all give host/org/repo. It returns "" for what names no
// remote host, such as a local path.
//
// The port goes because forges serve ssh and https on different ones (GitLab's ssh often on
// 2222), and those spellings must compare equal; two forges on one host told apart only by port
// would share refreshes, which is harmless.
func NormalizeURL(u string) string {
	s := strings.TrimSpace(u)
	var host, path string
	if scheme, _, ok := strings.Cut(s, "://"); ok && isScheme(scheme) {
		pu, err := url.Parse(s)
		if err != nil {
			return ""
		}
		host, path = pu.Hostname(), pu.Path
	} else {
		host, path = splitSCP(s)
	}
	if !isHost(host) {
		return ""
	}
	host = strings.ToLower(host)
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	if path = trimPath(path); path == "" {
		return host
	}
	return host + "/" + path
}

// splitSCP splits git's scp-like form, [user@]host:path, or a scheme-less host/path. As in git,
// a ":" before the first "/" makes the form scp-like.
func splitSCP(s string) (host, path string) {
	auth, rest, slash := strings.Cut(s, "/")
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:]
	}
	var after string
	if inner, ok := strings.CutPrefix(auth, "["); ok {
		var closed bool
		host, after, closed = strings.Cut(inner, "]")
		if !closed || (after != "" && after[0] != ':') {
			return "", ""
		}
		after = strings.TrimPrefix(after, ":")
	} else {
		host, after, _ = strings.Cut(auth, ":")
	}
	switch {
	case after == "":
		return host, rest
	case slash:
		return host, after + "/" + rest
	default:
		return host, after
	}
}

// trimPath drops surrounding "/" and space and any ".git" suffix until none is left, so that
// NormalizeURL gives the same answer for its own output.
func trimPath(p string) string {
	for {
		q := strings.TrimSuffix(strings.TrimSpace(strings.Trim(p, "/")), ".git")
		if q == p {
			return p
		}
		p = q
	}
}

// isScheme follows RFC 3986: a letter, then letters, digits, "+", "-" or ".".
func isScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isHost accepts a DNS name or an IPv4 or IPv6 address (without brackets or zone). A name
// starts with a letter or digit, which keeps "." and ".." of relative paths out.
func isHost(s string) bool {
	ipv6 := strings.Contains(s, ":")
	if s == "" || (!ipv6 && !isLetter(s[0]) && !isDigit(s[0])) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c), c == '.':
		case ipv6:
			if c != ':' && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
				return false
			}
		case !isLetter(c) && c != '-' && c != '_':
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
