package envelope_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/errtrack/envelope"
)

func TestParseAuth(t *testing.T) {
	tests := []struct {
		name    string
		target  string
		header  map[string]string
		want    envelope.Auth
		wantErr error
	}{
		{
			name:   "X-Sentry-Auth as sentry-go sends it",
			header: map[string]string{"X-Sentry-Auth": "Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=" + testKey},
			want:   envelope.Auth{PublicKey: testKey, Version: "7", Client: "sentry.go/0.50.0", Source: envelope.SourceHeader},
		},
		{
			name:   "deprecated secret is read past",
			header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=" + testKey + ", sentry_secret=fedcba9876543210fedcba9876543210, sentry_version=7"},
			want:   envelope.Auth{PublicKey: testKey, Version: "7", Source: envelope.SourceHeader},
		},
		{
			name:   "quoted values, no sentry_ prefix, odd spacing and case",
			header: map[string]string{"X-Sentry-Auth": `  sentry   key="` + testKey + `" ,Version=7,sentry_timestamp=1700000000`},
			want:   envelope.Auth{PublicKey: testKey, Version: "7", Source: envelope.SourceHeader},
		},
		{
			name:   "X-Sentry-Auth without the scheme word",
			header: map[string]string{"X-Sentry-Auth": "sentry_key=" + testKey},
			want:   envelope.Auth{PublicKey: testKey, Source: envelope.SourceHeader},
		},
		{
			name:   "Authorization in the Sentry scheme",
			header: map[string]string{"Authorization": "Sentry sentry_key=" + testKey + ", sentry_version=7"},
			want:   envelope.Auth{PublicKey: testKey, Version: "7", Source: envelope.SourceHeader},
		},
		{
			name:   "query, as browser SDKs send it",
			target: "/api/42/envelope/?sentry_key=" + testKey + "&sentry_version=7&sentry_client=sentry.javascript.browser%2F8.0.0",
			want:   envelope.Auth{PublicKey: testKey, Version: "7", Client: "sentry.javascript.browser/8.0.0", Source: envelope.SourceQuery},
		},
		{
			name:   "header wins over query",
			target: "/api/42/envelope/?sentry_key=ffffffffffffffffffffffffffffffff",
			header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=" + testKey},
			want:   envelope.Auth{PublicKey: testKey, Source: envelope.SourceHeader},
		},
		{
			name:   "another Authorization scheme is not ours",
			target: "/api/42/envelope/?sentry_key=" + testKey,
			header: map[string]string{"Authorization": "Bearer abc"},
			want:   envelope.Auth{PublicKey: testKey, Source: envelope.SourceQuery},
		},
		{
			name:   "16 and 64 characters are accepted",
			header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=ABCDEFabcdef0123"},
			want:   envelope.Auth{PublicKey: "ABCDEFabcdef0123", Source: envelope.SourceHeader},
		},
		{
			name:   "64 characters",
			header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=" + strings.Repeat("a", 64)},
			want:   envelope.Auth{PublicKey: strings.Repeat("a", 64), Source: envelope.SourceHeader},
		},
		{name: "nothing", wantErr: envelope.ErrNoAuth},
		{name: "only a bearer token", header: map[string]string{"Authorization": "Bearer abc"}, wantErr: envelope.ErrNoAuth},
		{name: "no sentry_key", header: map[string]string{"X-Sentry-Auth": "Sentry sentry_version=7, sentry_client=x/1"}, wantErr: envelope.ErrBadAuth},
		{name: "empty sentry_key", header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key="}, wantErr: envelope.ErrBadAuth},
		{name: "key too short", header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=abcdef012345678"}, wantErr: envelope.ErrBadAuth},
		{name: "key too long", header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=" + strings.Repeat("a", 65)}, wantErr: envelope.ErrBadAuth},
		{name: "key with a dash", header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=0123456789abcdef-0123456789abcde"}, wantErr: envelope.ErrBadAuth},
		{name: "key not ASCII", header: map[string]string{"X-Sentry-Auth": "Sentry sentry_key=0123456789abcdef0123456789abcdé"}, wantErr: envelope.ErrBadAuth},
		{name: "Authorization: Sentry without a key", header: map[string]string{"Authorization": "Sentry sentry_version=7"}, wantErr: envelope.ErrBadAuth},
		{name: "bad query key", target: "/api/42/envelope/?sentry_key=short", wantErr: envelope.ErrBadAuth},
		{name: "empty query key", target: "/api/42/envelope/?sentry_key=", wantErr: envelope.ErrBadAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = "/api/42/envelope/"
			}
			r := httptest.NewRequest(http.MethodPost, target, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			got, err := envelope.ParseAuth(r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseAuth error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseAuth (-want +got):\n%s", diff)
			}
		})
	}
}

// A rejected key is not echoed: it may be a secret pasted in the wrong place.
func TestParseAuthDoesNotEchoTheKey(t *testing.T) {
	const secret = "this-is-not-a-key-but-a-password"
	r := httptest.NewRequest(http.MethodPost, "/api/42/envelope/", nil)
	r.Header.Set("X-Sentry-Auth", "Sentry sentry_key="+secret)
	_, err := envelope.ParseAuth(r)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("ParseAuth error = %v, want one that does not contain the key", err)
	}
}

func TestParseDSN(t *testing.T) {
	tests := []struct {
		in      string
		want    envelope.DSN
		str     string // String(), when it differs from in
		wantErr bool
	}{
		{in: "https://" + testKey + "@ferry.example.com/42", want: envelope.DSN{Scheme: "https", PublicKey: testKey, Host: "ferry.example.com", ProjectID: "42"}},
		{in: "http://" + testKey + "@127.0.0.1:8080/7", want: envelope.DSN{Scheme: "http", PublicKey: testKey, Host: "127.0.0.1:8080", ProjectID: "7"}},
		{in: "https://" + testKey + "@[::1]:9000/1", want: envelope.DSN{Scheme: "https", PublicKey: testKey, Host: "[::1]:9000", ProjectID: "1"}},
		{in: "https://" + testKey + "@example.com/errors/sentry/42", want: envelope.DSN{Scheme: "https", PublicKey: testKey, Host: "example.com", PathPrefix: "/errors/sentry", ProjectID: "42"}},
		{
			in:   "https://" + testKey + ":fedcba9876543210fedcba9876543210@example.com/42",
			want: envelope.DSN{Scheme: "https", PublicKey: testKey, Host: "example.com", ProjectID: "42"},
			str:  "https://" + testKey + "@example.com/42",
		},
		{in: "https://" + testKey + "@example.com/42/", want: envelope.DSN{Scheme: "https", PublicKey: testKey, Host: "example.com", ProjectID: "42"}, str: "https://" + testKey + "@example.com/42"},
		{in: "https://" + testKey + "@example.com/42?x=1", want: envelope.DSN{Scheme: "https", PublicKey: testKey, Host: "example.com", ProjectID: "42"}, str: "https://" + testKey + "@example.com/42"},
		{in: "", wantErr: true},
		{in: "not a url", wantErr: true},
		{in: "ftp://" + testKey + "@example.com/42", wantErr: true},
		{in: "https://example.com/42", wantErr: true},
		{in: "https://" + testKey + "@/42", wantErr: true},
		{in: "https://" + testKey + "@example.com", wantErr: true},
		{in: "https://" + testKey + "@example.com/", wantErr: true},
		{in: "https://" + testKey + "@example.com/my-project", wantErr: true},
		{in: "https://" + testKey + "@example.com/12345678901234567890", wantErr: true},
		{in: "https://short@example.com/42", wantErr: true},
		{in: "https://" + testKey + "%2F@example.com/42", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := envelope.ParseDSN(tt.in)
			if tt.wantErr {
				if !errors.Is(err, envelope.ErrBadAuth) {
					t.Fatalf("ParseDSN(%q) = %+v, %v; want ErrBadAuth", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDSN: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseDSN (-want +got):\n%s", diff)
			}
			str := tt.str
			if str == "" {
				str = tt.in
			}
			if got.String() != str {
				t.Errorf("String() = %q, want %q", got.String(), str)
			}
		})
	}
}

func TestHeaderAuth(t *testing.T) {
	tests := []struct {
		name    string
		header  envelope.Header
		want    envelope.Auth
		wantErr error
	}{
		{
			name:   "dsn",
			header: envelope.Header{DSN: "https://" + testKey + "@example.com/42", SDK: envelope.SDK{Name: "sentry.javascript.node", Version: "9.1.0"}},
			want:   envelope.Auth{PublicKey: testKey, ProjectID: "42", Client: "sentry.javascript.node/9.1.0", Source: envelope.SourceDSN},
		},
		{name: "no dsn", wantErr: envelope.ErrNoAuth},
		{name: "bad dsn", header: envelope.Header{DSN: "https://example.com/42"}, wantErr: envelope.ErrBadAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.header.Auth()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Auth error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Auth (-want +got):\n%s", diff)
			}
		})
	}
}
