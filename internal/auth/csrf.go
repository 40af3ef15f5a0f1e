package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
)

// CSRFHeader and CSRFField carry a request's CSRF token: scripts send the header, HTML
// forms the field.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// csrfToken returns the CSRF token of the session whose token hashes to hash: an HMAC of
// the hash under the server key. Deriving it needs no storage, changes with every session,
// and cannot be computed by anyone without the key, not even from a stolen hash.
func (m *Manager) csrfToken(hash []byte) string {
	mac := hmac.New(sha256.New, m.key)
	mac.Write(hash)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// CSRFToken returns the CSRF token of the request's session, for a page to embed in its
// forms, if the request has a session cookie. Handlers behind RequireRole read it from the
// context instead, with CSRFTokenFrom.
func (m *Manager) CSRFToken(r *http.Request) (string, bool) {
	hash, ok := cookieHash(r)
	if !ok {
		return "", false
	}
	return m.csrfToken(hash), true
}

// safeMethod reports whether method changes nothing, by HTTP's rules, and so needs no CSRF
// token.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// CrossSite reports whether the browser says the request comes from another site. Browsers
// send Sec-Fetch-Site; its absence says nothing. A login form, which has no session and so
// no CSRF token yet, should refuse such requests.
func CrossSite(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Site") == "cross-site"
}

// checkCSRF reports, wrapped in ErrForbidden, why a request of the session whose token
// hashes to hash may not change state: it comes from another site, or it lacks the
// session's CSRF token in the header or the form field. Safe methods pass.
func (m *Manager) checkCSRF(r *http.Request, hash []byte) error {
	if safeMethod(r.Method) {
		return nil
	}
	if CrossSite(r) {
		return fmt.Errorf("%w: cross-site request", ErrForbidden)
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	if got == "" {
		return fmt.Errorf("%w: missing CSRF token", ErrForbidden)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(m.csrfToken(hash))) != 1 {
		return fmt.Errorf("%w: wrong CSRF token", ErrForbidden)
	}
	return nil
}
