package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const secretPath = "/hooks/5pcAyYRe2vAE2Dws4/Yq8nzZr8wdq5Dj9AW7KykCHgKxybR6fXBAiyvGHL5Ktr6dtb"

// noLeak fails the test if any text of err holds a part of the secret path.
func noLeak(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, s := range []string{secretPath, "5pcAyYRe2vAE2Dws4", "Yq8nzZr8wdq5Dj9AW7KykCHgKxybR6fXBAiyvGHL5Ktr6dtb"} {
			if strings.Contains(e.Error(), s) {
				t.Errorf("error leaks %q: %v", s, e)
			}
		}
	}
}

func TestPost(t *testing.T) {
	var got http.Header
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Set("X-Answer", "yes")
		w.WriteHeader(http.StatusBadRequest) // not an error for Post
		fmt.Fprint(w, strings.Repeat("x", MaxResponseBody+1000))
	}))
	defer srv.Close()

	resp, err := Post(t.Context(), nil, srv.URL+secretPath, []byte(`{"a":1}`), http.Header{"X-Extra": {"1"}})
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if resp.Status != http.StatusBadRequest || resp.Header.Get("X-Answer") != "yes" || len(resp.Body) != MaxResponseBody {
		t.Errorf("Post = status %d, X-Answer %q, %d bytes; want 400, yes, %d", resp.Status, resp.Header.Get("X-Answer"), len(resp.Body), MaxResponseBody)
	}
	sent := map[string]string{"User-Agent": got.Get("User-Agent"), "Content-Type": got.Get("Content-Type"), "X-Extra": got.Get("X-Extra"), "body": gotBody}
	want := map[string]string{"User-Agent": "ferry", "Content-Type": "application/json", "X-Extra": "1", "body": `{"a":1}`}
	if diff := cmp.Diff(want, sent); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestPostTransportErrors(t *testing.T) {
	// A port nobody listens on: take one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name   string
		ctx    context.Context
		url    string
		prefix string
		is     error
	}{
		{"connection refused", t.Context(), refused + secretPath, "POST " + refused + "/…: ", nil},
		{"cancelled", cancelled, refused + secretPath, "POST " + refused + "/…: ", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Post(tt.ctx, nil, tt.url, nil, nil)
			var se *SendError
			if !errors.As(err, &se) || se.Permanent || se.Status != 0 {
				t.Fatalf("Post = %#v, want a retryable *SendError without status", err)
			}
			if !strings.HasPrefix(err.Error(), tt.prefix) {
				t.Errorf("Post = %q, want it to start with %q", err, tt.prefix)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Post = %v, want it to wrap %v", err, tt.is)
			}
			noLeak(t, err)
		})
	}
}

func TestPostInvalidURL(t *testing.T) {
	for _, u := range []string{
		"", "ftp://h" + secretPath, "//h" + secretPath, "http://h:port" + secretPath, "http://h\x7f" + secretPath, "hooks" + secretPath,
	} {
		t.Run(u, func(t *testing.T) {
			_, err := Post(t.Context(), nil, u, nil, nil)
			var se *SendError
			if !errors.As(err, &se) || !se.Permanent {
				t.Fatalf("Post = %v, want a permanent *SendError", err)
			}
			noLeak(t, err)
		})
	}
}

func TestHTTPClientRedirects(t *testing.T) {
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method+" "+r.URL.Path)
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
		case "/temporary":
			http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
		default:
			b, _ := io.ReadAll(r.Body)
			fmt.Fprint(w, string(b))
		}
	}))
	defer srv.Close()

	tests := []struct {
		path    string
		status  int
		body    string
		methods []string
	}{
		// A 301 would make the POST a GET: stop, and let the receiver report the status.
		{"/moved", http.StatusMovedPermanently, "", []string{"POST /moved"}},
		{"/temporary", http.StatusOK, "payload", []string{"POST /temporary", "POST /new"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			methods = nil
			resp, err := Post(t.Context(), nil, srv.URL+tt.path, []byte("payload"), nil)
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			if resp.Status != tt.status || (tt.body != "" && string(resp.Body) != tt.body) {
				t.Errorf("Post = %d %q, want %d %q", resp.Status, resp.Body, tt.status, tt.body)
			}
			if diff := cmp.Diff(tt.methods, methods); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
	if c := HTTPClient(nil); c.Timeout != DefaultTimeout {
		t.Errorf("HTTPClient(nil).Timeout = %v, want %v", c.Timeout, DefaultTimeout)
	}
	if c := (&http.Client{}); HTTPClient(c) != c {
		t.Error("HTTPClient(c) is not c")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://hooks.slack.com/services/T0/B0/xoxb", "https://hooks.slack.com/…"},
		{"https://api.telegram.org/bot123:ABC/sendMessage", "https://api.telegram.org/…"},
		{"https://user:pass@chat.example:8443/hooks/a/b?token=x#f", "https://chat.example:8443/…"},
		{"https://chat.example", "https://chat.example/…"},
		{"hooks/a/b", "…"},
		{"http://h:port/x", "…"},
		{"", "…"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := RedactURL(tt.in); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSnippet(t *testing.T) {
	const hook = "https://chat.example" + secretPath + "?token=q7Hs9dLm2Kp4"
	tests := []struct {
		name, body, want string
	}{
		{"plain", "invalid_payload", "invalid_payload"},
		{"whitespace", "  no\n\tservice \r\n", "no service"},
		{"quotes the URL", "POST " + hook + " failed", "POST … failed"},
		{"quotes the path", "no route " + secretPath, "no route …"},
		{"quotes a segment", "unknown token Yq8nzZr8wdq5Dj9AW7KykCHgKxybR6fXBAiyvGHL5Ktr6dtb.", "unknown token …."},
		{"quotes the query", "bad token=q7Hs9dLm2Kp4", "bad …"},
		{"escaped", "no route /hooks/5pcAyYRe2vAE2Dws4%2FYq8nzZr8wdq5Dj9AW7KykCHgKxybR6fXBAiyvGHL5Ktr6dtb", "no route /hooks/…%2F…"},
		{"binary", "\x00\x01\x02PNG", ""},
		{"empty", "", ""},
		{"long", strings.Repeat("é", 300), strings.Repeat("é", 200) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Snippet([]byte(tt.body), hook); got != tt.want {
				t.Errorf("Snippet(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		name    string
		s       string
		secrets []string
		want    string
	}{
		{"raw", "token 123:ABC-def here", []string{"123:ABC-def"}, "token … here"},
		{"path-escaped", "path /bot123%2Fx", []string{"123/x"}, "path /bot…"},
		{"query-escaped", "q=a+b%26c", []string{"a b&c"}, "q=…"},
		{"short secrets are ignored", "a cat", []string{"a", ""}, "a cat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Scrub(tt.s, tt.secrets...); got != tt.want {
				t.Errorf("Scrub(%q) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}
