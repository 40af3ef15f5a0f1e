package webhook

import (
	"fmt"
	"net/http"
	"strings"
)

// Config is a generic webhook destination. Its URL and HMAC secret are secrets and are not
// here: New takes them as notify.Secrets.
type Config struct {
	// Headers are sent with every request, such as a routing key the receiver expects. They
	// are plain configuration: a credential belongs in the URL or the HMAC secret.
	Headers map[string]string `yaml:"headers"`
}

// reserved are the headers Ferry sets itself.
var reserved = []string{"Content-Type", "Content-Length", "User-Agent", "Host", "Connection", "Transfer-Encoding"}

// Validate reports the first header that is not a valid HTTP header or that Ferry sets itself.
func (c Config) Validate() error {
	for name, value := range c.Headers {
		canonical := http.CanonicalHeaderKey(name)
		if !isToken(name) {
			return fmt.Errorf("headers: %q is not a header name", name)
		}
		if strings.HasPrefix(canonical, "X-Ferry-") {
			return fmt.Errorf("headers: %s: X-Ferry- headers are Ferry's", name)
		}
		for _, r := range reserved {
			if canonical == r {
				return fmt.Errorf("headers: %s is set by Ferry", name)
			}
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return fmt.Errorf("headers: %s: value holds a line break", name)
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token, as a header name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}
