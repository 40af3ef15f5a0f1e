package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Secret reads a secret a receiver needs (a bot token, a webhook URL, an HMAC key) each time it
// sends, so that a rotated file or Kubernetes Secret takes effect without a restart. Its error
// says what could not be read, never the value.
type Secret func(ctx context.Context) (string, error)

// StaticSecret is a Secret that always returns v, for tests and for values given inline.
func StaticSecret(v string) Secret {
	return func(context.Context) (string, error) { return v, nil }
}

// DefaultTimeout bounds a whole request (connect, send, answer) of the client HTTPClient builds.
const DefaultTimeout = 30 * time.Second

// MaxResponseBody is how much of a service's answer Post reads; the rest is discarded.
const MaxResponseBody = 64 << 10

// HTTPClient returns c, or when c is nil a client with DefaultTimeout that follows a redirect
// only when it keeps the method (307, 308): a 301 or 302 would turn the POST into a GET that
// a webhook answers 200 without posting anything.
func HTTPClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{
		Timeout: DefaultTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 || req.Method != via[0].Method {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// Response is a service's answer to Post.
type Response struct {
	Status int
	Header http.Header
	// Body is the first MaxResponseBody bytes of the answer.
	Body []byte
}

// Post sends body to rawURL as JSON, with User-Agent ferry, the given extra headers, and
// returns the answer whatever its status: each receiver reads its service's error format.
//
// Its errors are *SendError and never hold the URL, which often is itself the secret (a
// webhook URL, a bot token in the path): they name only RedactURL(rawURL). No answer (a
// refused or reset connection, a timeout, a cancelled ctx) is retryable; a URL that does not
// parse is permanent.
func Post(ctx context.Context, client *http.Client, rawURL string, body []byte, header http.Header) (Response, error) {
	client = HTTPClient(client)
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Response{}, &SendError{Permanent: true, Err: errors.New("invalid URL: want an absolute http or https URL")}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Response{}, &SendError{Permanent: true, Err: redact(err, "build request", rawURL)}
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("User-Agent", "ferry")
	req.Header.Set("Content-Type", "application/json")

	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Response{}, &SendError{Err: redact(err, "POST "+RedactURL(rawURL), rawURL)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if err != nil {
		return Response{}, &SendError{Err: redact(err, "read answer of POST "+RedactURL(rawURL), rawURL)}
	}
	// Drain a little more so the connection can be reused; a huge answer is cut off instead.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4*MaxResponseBody))
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// RedactURL returns raw cut to scheme://host/…, which is safe to show: the path, query and
// user info of a webhook URL are its secret. It returns … when raw does not parse.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "…"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Snippet returns the start of a service's answer as one short line for an error message,
// with every part of rawURL that may be secret removed (a proxy's error page may quote the
// request URL), or "" when body is empty or not text.
func Snippet(body []byte, rawURL string) string {
	const maxLen = 200
	s := Scrub(string(bytes.ToValidUTF8(body, []byte("\uFFFD"))), secretParts(rawURL)...)
	s = strings.Join(strings.Fields(s), " ")
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return ""
		}
	}
	if utf8.RuneCountInString(s) > maxLen {
		s = string([]rune(s)[:maxLen]) + "…"
	}
	return s
}

// Scrub replaces every occurrence of each secret in s, raw or URL-escaped, with "…". Secrets
// shorter than four bytes are ignored: they would blank ordinary words.
func Scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue
		}
		for _, form := range []string{sec, url.PathEscape(sec), url.QueryEscape(sec)} {
			s = strings.ReplaceAll(s, form, "…")
		}
	}
	return s
}

// secretParts lists the parts of a URL that may be secret: the URL itself, its path, query
// and password, and each path segment or query value long enough to be a token.
func secretParts(rawURL string) []string {
	parts := []string{rawURL}
	u, err := url.Parse(rawURL)
	if err != nil {
		return parts
	}
	parts = append(parts, u.Path, u.EscapedPath(), u.RawQuery)
	if p, ok := u.User.Password(); ok {
		parts = append(parts, p)
	}
	if u.User != nil {
		parts = append(parts, u.User.Username())
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 8 {
			parts = append(parts, seg)
		}
	}
	for _, vs := range u.Query() {
		parts = append(parts, vs...)
	}
	// Longest first, so a segment does not break up the whole path before it is replaced.
	slices.SortStableFunc(parts, func(a, b string) int { return len(b) - len(a) })
	return parts
}

// redactedError is a transport error with the URL's secret parts removed from its text; it
// unwraps to the original so errors.Is(err, context.DeadlineExceeded) still works.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, context, rawURL string) error {
	return &redactedError{msg: Scrub(fmt.Sprintf("%s: %v", context, err), secretParts(rawURL)...), err: err}
}
