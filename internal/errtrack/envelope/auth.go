package envelope

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Where the credentials of a request were found.
const (
	SourceHeader = "header" // X-Sentry-Auth, or Authorization: Sentry ...
	SourceQuery  = "query"  // ?sentry_key=..., used by browser SDKs to avoid CORS preflights
	SourceDSN    = "dsn"    // the dsn field of the envelope header
)

// Key length bounds. Sentry issues 32 hex digits; other trackers that speak the protocol
// use other alphabets and lengths, so any letters and digits in this range are accepted.
const (
	minKeyLen = 16
	maxKeyLen = 64
)

// maxProjectIDLen keeps a project ID within a uint64. The JavaScript SDK refuses a DSN
// whose project ID is not all digits, so project IDs are decimal numbers.
const maxProjectIDLen = 19

// Auth is what a request says about who sends it. Only PublicKey identifies the sender;
// the rest is informational. The sentry_secret of old SDKs is read past and not kept: it
// has been deprecated since Sentry 9 and is no longer checked.
type Auth struct {
	// PublicKey is the DSN's public key: letters and digits, 16 to 64 of them.
	PublicKey string
	// ProjectID is the project the DSN names. It is set only when Source is SourceDSN;
	// otherwise the project comes from the request path.
	ProjectID string
	// Version is sentry_version as sent ("7" today), or "".
	Version string
	// Client is sentry_client, such as "sentry.go/0.50.0", or "".
	Client string
	// Source says where the credentials were found: SourceHeader, SourceQuery or SourceDSN.
	Source string
}

// ParseAuth reads the credentials of an ingest request from, in order, the X-Sentry-Auth
// header, an Authorization header in the "Sentry" scheme, and the sentry_key query
// parameter. The first one present is used; if it is malformed the error wraps ErrBadAuth
// and the others are not tried. When none is present the error wraps ErrNoAuth: the caller
// then reads the body and tries the envelope header's dsn with Header.Auth, as Relay does.
func ParseAuth(r *http.Request) (Auth, error) {
	if v := r.Header.Get("X-Sentry-Auth"); v != "" {
		return parseAuthHeader("X-Sentry-Auth", v, false)
	}
	if v := r.Header.Get("Authorization"); hasSentryScheme(v) {
		return parseAuthHeader("Authorization", v, true)
	}
	if r.URL != nil {
		q := r.URL.Query()
		if q.Has("sentry_key") {
			a := Auth{
				PublicKey: q.Get("sentry_key"),
				Version:   q.Get("sentry_version"),
				Client:    q.Get("sentry_client"),
				Source:    SourceQuery,
			}
			if err := checkKey(a.PublicKey); err != nil {
				return Auth{}, fmt.Errorf("%w: sentry_key query parameter: %w", ErrBadAuth, err)
			}
			return a, nil
		}
	}
	return Auth{}, fmt.Errorf("%w: no X-Sentry-Auth header, Authorization: Sentry header or sentry_key query parameter", ErrNoAuth)
}

// Auth returns the credentials in the envelope header's dsn field. The error wraps
// ErrNoAuth when the header has no dsn and ErrBadAuth when the dsn cannot be parsed.
func (h Header) Auth() (Auth, error) {
	if h.DSN == "" {
		return Auth{}, fmt.Errorf("%w: the envelope header has no dsn", ErrNoAuth)
	}
	d, err := ParseDSN(h.DSN)
	if err != nil {
		return Auth{}, fmt.Errorf("envelope header dsn: %w", err)
	}
	a := Auth{PublicKey: d.PublicKey, ProjectID: d.ProjectID, Source: SourceDSN}
	if h.SDK.Name != "" {
		a.Client = h.SDK.Name + "/" + h.SDK.Version
	}
	return a, nil
}

// hasSentryScheme reports whether an Authorization header uses the "Sentry" scheme;
// any other scheme belongs to someone else and is left alone.
func hasSentryScheme(v string) bool {
	scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	return strings.EqualFold(scheme, "sentry")
}

// parseAuthHeader reads "Sentry sentry_key=K, sentry_version=7, sentry_client=C". Keys
// may omit the sentry_ prefix and values may be quoted, as Sentry has always accepted.
// The "Sentry" scheme word is optional in X-Sentry-Auth, required in Authorization.
func parseAuthHeader(name, v string, schemeRequired bool) (Auth, error) {
	v = strings.TrimSpace(v)
	if scheme, rest, _ := strings.Cut(v, " "); strings.EqualFold(scheme, "sentry") {
		v = rest
	} else if schemeRequired {
		return Auth{}, fmt.Errorf("%w: %s header is not in the Sentry scheme", ErrBadAuth, name)
	}
	a := Auth{Source: SourceHeader}
	seenKey := false
	for part := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		k = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(k)), "sentry_")
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch k {
		case "key":
			a.PublicKey, seenKey = val, true
		case "version":
			a.Version = val
		case "client":
			a.Client = val
		}
	}
	if !seenKey {
		return Auth{}, fmt.Errorf("%w: %s header has no sentry_key", ErrBadAuth, name)
	}
	if err := checkKey(a.PublicKey); err != nil {
		return Auth{}, fmt.Errorf("%w: %s header: %w", ErrBadAuth, name, err)
	}
	return a, nil
}

// checkKey reports whether k has the shape of a public key. It never echoes the key:
// a wrong one may be a secret pasted in the wrong place.
func checkKey(k string) error {
	if len(k) < minKeyLen || len(k) > maxKeyLen {
		return fmt.Errorf("public key must be %d to %d letters or digits, got %d characters", minKeyLen, maxKeyLen, len(k))
	}
	for i := 0; i < len(k); i++ {
		if !isAlnum(k[i]) {
			return fmt.Errorf("public key must be letters and digits only, byte %d is not", i)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// DSN is a Sentry Data Source Name, SCHEME://PUBLIC_KEY@HOST[:PORT][/PATH_PREFIX]/PROJECT_ID:
// what an SDK is configured with, and what it derives its ingest URL from
// (SCHEME://HOST/PATH_PREFIX/api/PROJECT_ID/envelope/).
type DSN struct {
	// Scheme is "http" or "https".
	Scheme string
	// PublicKey is the key that authenticates the sender.
	PublicKey string
	// Host is the host, with ":port" when the DSN has one.
	Host string
	// PathPrefix is "" or a path such as "/sentry", without a trailing slash, when the
	// server is mounted below the root.
	PathPrefix string
	// ProjectID is the project's decimal number.
	ProjectID string
}

// ParseDSN parses a DSN. A secret key ("KEY:SECRET@", deprecated) is accepted and
// dropped; a query or fragment is ignored, as the SDKs ignore them. Errors wrap ErrBadAuth.
func ParseDSN(s string) (DSN, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return DSN{}, fmt.Errorf("%w: dsn is not a URL", ErrBadAuth)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return DSN{}, fmt.Errorf("%w: dsn scheme must be http or https", ErrBadAuth)
	}
	if u.User == nil || u.User.Username() == "" {
		return DSN{}, fmt.Errorf("%w: dsn has no public key (want SCHEME://KEY@HOST/PROJECT_ID)", ErrBadAuth)
	}
	if u.Host == "" || u.Hostname() == "" {
		return DSN{}, fmt.Errorf("%w: dsn has no host", ErrBadAuth)
	}
	d := DSN{Scheme: u.Scheme, PublicKey: u.User.Username(), Host: u.Host}
	if err := checkKey(d.PublicKey); err != nil {
		return DSN{}, fmt.Errorf("%w: dsn: %w", ErrBadAuth, err)
	}
	p := strings.TrimSuffix(u.Path, "/")
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return DSN{}, fmt.Errorf("%w: dsn has no project ID (want SCHEME://KEY@HOST/PROJECT_ID)", ErrBadAuth)
	}
	d.PathPrefix, d.ProjectID = p[:i], p[i+1:]
	if err := checkProjectID(d.ProjectID); err != nil {
		return DSN{}, fmt.Errorf("%w: dsn: %w", ErrBadAuth, err)
	}
	return d, nil
}

// String formats the DSN as the SDKs expect it.
func (d DSN) String() string {
	u := url.URL{
		Scheme: d.Scheme,
		User:   url.User(d.PublicKey),
		Host:   d.Host,
		Path:   d.PathPrefix + "/" + d.ProjectID,
	}
	return u.String()
}

func checkProjectID(id string) error {
	if id == "" || len(id) > maxProjectIDLen {
		return fmt.Errorf("project ID must be 1 to %d digits, got %d characters", maxProjectIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return fmt.Errorf("project ID must be digits only, byte %d is not", i)
		}
	}
	return nil
}
