package store

import (
	"regexp"
	"strings"
)

const redacted = "xxxxx"

// passwordParam matches a password in a query string or a key=value connection string,
// quoted or not.
var passwordParam = regexp.MustCompile(`(?i)((?:^|[?&\s])(?:ssl)?password=)(?:'(?:[^'\\]|\\.)*'?|[^&\s#]*)`)

// RedactURL returns rawURL with every password it carries, in the user info or in a
// password or sslpassword parameter, replaced by "xxxxx", so the URL can appear in errors
// and logs. It works on the raw text, so malformed URLs are redacted too; where the text
// is ambiguous it redacts more rather than less.
func RedactURL(rawURL string) string {
	s := rawURL
	if i := strings.Index(s, "://"); i >= 0 {
		// The user info ends at the last '@', even one a malformed URL leaves in its path or
		// query: a password with an unescaped '/', '?' or '#' is still hidden.
		start := i + len("://")
		if at := strings.LastIndexByte(s[start:], '@'); at >= 0 {
			if colon := strings.IndexByte(s[start:start+at], ':'); colon >= 0 {
				s = s[:start+colon+1] + redacted + s[start+at:]
			}
		}
	}
	return passwordParam.ReplaceAllString(s, "${1}"+redacted)
}
