package errtrack

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
)

// Filtered stands in for a value Ferry does not keep: the value of a header, parameter or
// field whose name looks like it holds a credential (SecretName), and cookies.
const Filtered = "[Filtered]"

// secretParts are the pieces of names that hold credentials, lowercase.
var secretParts = []string{"auth", "cookie", "token", "secret", "passw", "pwd", "api-key", "api_key",
	"apikey", "session", "credential", "private", "signature", "csrf", "xsrf", "dsn"}

// SecretName reports whether a header, query parameter or JSON key looks like it holds a
// credential: it contains, in any case, one of auth, cookie, token, secret, passw, pwd,
// api-key, api_key, apikey, session, credential, private, signature, csrf, xsrf or dsn. As
// Sentry's default data scrubbing does, Ferry keeps no value under such a name.
func SecretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range secretParts {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// ScrubValue replaces, in a value decoded from JSON, the values of secret-looking keys with
// Filtered, at every depth, and returns it.
func ScrubValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if SecretName(k) {
				t[k] = Filtered
			} else {
				t[k] = ScrubValue(x)
			}
		}
	case []any:
		for i, x := range t {
			t[i] = ScrubValue(x)
		}
	}
	return v
}

// scrub filters the credentials an event may carry before Ferry stores it: request
// headers, cookies, query parameters and a URL's password, and secret-looking keys of the
// request body and environment, breadcrumb data, extra data, contexts, user data and
// frame variables.
func (e *Event) scrub() {
	if r := e.Request; r != nil {
		for i, h := range r.Headers {
			if SecretName(h.Key) {
				r.Headers[i].Value = Filtered
			}
		}
		if len(r.Cookies) > 0 && string(r.Cookies) != "null" {
			r.Cookies = json.RawMessage(`"` + Filtered + `"`)
		}
		r.URL = ScrubURL(r.URL)
		if firstByte(r.QueryString) == '"' {
			var q string
			if json.Unmarshal(r.QueryString, &q) == nil {
				if s := scrubQuery(q); s != q {
					r.QueryString, _ = json.Marshal(s)
				}
			}
		} else {
			r.QueryString = scrubRaw(r.QueryString)
		}
		r.Data = scrubRaw(r.Data)
		r.Env = scrubRaw(r.Env)
	}
	for i := range e.Breadcrumbs {
		e.Breadcrumbs[i].Data = scrubRaw(e.Breadcrumbs[i].Data)
	}
	scrubMap(e.Extra)
	scrubMap(e.Contexts)
	if u := e.User; u != nil {
		u.Data = scrubRaw(u.Data)
	}
	for _, st := range e.stacktraces() {
		for i := range st.Frames {
			st.Frames[i].Vars = scrubRaw(st.Frames[i].Vars)
		}
	}
}

// stacktraces returns the event's stack traces: its exceptions', its threads' and its own.
func (e *Event) stacktraces() []*Stacktrace {
	var out []*Stacktrace
	for _, x := range e.Exception {
		if x.Stacktrace != nil {
			out = append(out, x.Stacktrace)
		}
	}
	for _, t := range e.Threads {
		if t.Stacktrace != nil {
			out = append(out, t.Stacktrace)
		}
	}
	if e.Stacktrace != nil {
		out = append(out, e.Stacktrace)
	}
	return out
}

func scrubMap(m map[string]json.RawMessage) {
	for k, v := range m {
		if SecretName(k) {
			m[k] = json.RawMessage(`"` + Filtered + `"`)
		} else {
			m[k] = scrubRaw(v)
		}
	}
}

// scrubRaw returns raw JSON with the values of secret-looking keys filtered at every depth.
// Most values hold no such key, which a search of the bytes tells without decoding them;
// those are returned as they are.
func scrubRaw(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || !mayHoldSecret(raw) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers as sent, not rounded through float64
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage(`"` + Filtered + `"`) // not JSON: keep nothing of it
	}
	out, err := json.Marshal(ScrubValue(v))
	if err != nil {
		return json.RawMessage(`"` + Filtered + `"`)
	}
	return out
}

// mayHoldSecret reports whether raw contains, in any case, a piece of a secret name.
func mayHoldSecret(raw []byte) bool {
	for _, s := range secretParts {
		if containsFold(raw, s) {
			return true
		}
	}
	return false
}

// containsFold reports whether b contains the lowercase ASCII word s, in any case.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if b[i]|0x20 == s[0] && bytes.EqualFold(b[i:i+len(s)], []byte(s)) {
			return true
		}
	}
	return false
}

// ScrubURL returns a URL with its user information (a password, or a token standing as the
// user name) and the values of secret-looking query parameters filtered; a URL that does
// not parse is kept only if nothing in it looks secret.
func ScrubURL(raw string) string {
	if raw == "" || !strings.ContainsAny(raw, "?@") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		if mayHoldSecret([]byte(raw)) {
			return Filtered
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User(Filtered)
	}
	u.RawQuery = scrubQuery(u.RawQuery)
	return u.String()
}

// scrubQuery filters the values of secret-looking parameters of a query string.
func scrubQuery(q string) string {
	if q == "" || !mayHoldSecret([]byte(q)) {
		return q
	}
	v, err := url.ParseQuery(q)
	if err != nil {
		return Filtered
	}
	for k := range v {
		if SecretName(k) {
			v[k] = []string{Filtered}
		}
	}
	return v.Encode()
}
