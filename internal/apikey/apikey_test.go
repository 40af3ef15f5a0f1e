package apikey

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestScopeIncludes(t *testing.T) {
	scopes := []Scope{ScopeRead, ScopeWrite, ScopeAdmin, "", "root", "READ"}
	// want lists what each scope includes; the others include nothing.
	want := map[Scope][]Scope{
		ScopeRead:  {ScopeRead},
		ScopeWrite: {ScopeRead, ScopeWrite},
		ScopeAdmin: {ScopeRead, ScopeWrite, ScopeAdmin},
	}
	for _, s := range scopes {
		for _, other := range scopes {
			includes := false
			for _, w := range want[s] {
				includes = includes || w == other
			}
			if got := s.Includes(other); got != includes {
				t.Errorf("Scope(%q).Includes(%q) = %v, want %v", s, other, got, includes)
			}
		}
	}
}

func TestParseScope(t *testing.T) {
	for _, s := range []string{"read", "write", "admin"} {
		if got, err := ParseScope(s); err != nil || string(got) != s {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", s, got, err, s)
		}
	}
	for _, s := range []string{"", "Read", "write:alerts", "admin "} {
		if _, err := ParseScope(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseScope(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestKeyAllows(t *testing.T) {
	tests := []struct {
		scopes []Scope
		want   Scope
		allow  bool
	}{
		{[]Scope{ScopeRead}, ScopeRead, true},
		{[]Scope{ScopeRead}, ScopeWrite, false},
		{[]Scope{ScopeRead, ScopeWrite}, ScopeWrite, true},
		{[]Scope{ScopeWrite}, ScopeAdmin, false},
		{[]Scope{ScopeAdmin}, ScopeRead, true},
		{nil, ScopeRead, false},
		{[]Scope{"root"}, ScopeRead, false},
	}
	for _, tt := range tests {
		if got := (Key{Scopes: tt.scopes}).Allows(tt.want); got != tt.allow {
			t.Errorf("Key{Scopes: %v}.Allows(%q) = %v, want %v", tt.scopes, tt.want, got, tt.allow)
		}
	}
}

func TestKeyLive(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	before, after := now.Add(-time.Second), now.Add(time.Second)
	tests := []struct {
		name string
		key  Key
		live bool
	}{
		{"no expiry", Key{}, true},
		{"expires later", Key{ExpiresAt: &after}, true},
		{"expires now", Key{ExpiresAt: &now}, false},
		{"expired", Key{ExpiresAt: &before}, false},
		{"revoked", Key{RevokedAt: &before}, false},
		{"revoked, not expired", Key{RevokedAt: &before, ExpiresAt: &after}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.key.Live(now)
			if tt.live && err != nil {
				t.Errorf("Live = %v, want nil", err)
			}
			if !tt.live && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("Live = %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestKeyValidate(t *testing.T) {
	created := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	later, earlier := created.Add(time.Hour), created.Add(-time.Hour)
	valid := func() Key {
		return Key{Name: "alertmanager", Prefix: "ferry_abcdefgh", Scopes: []Scope{ScopeWrite}, CreatedAt: created, ExpiresAt: &later}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("Validate of a valid key: %v", err)
	}
	tests := []struct {
		name   string
		modify func(*Key)
	}{
		{"no name", func(k *Key) { k.Name = "" }},
		{"long name", func(k *Key) { k.Name = strings.Repeat("n", maxName+1) }},
		{"newline in name", func(k *Key) { k.Name = "a\nb" }},
		{"invalid UTF-8", func(k *Key) { k.Name = "\xc3\x28" }},
		{"no prefix", func(k *Key) { k.Prefix = "" }},
		{"no scopes", func(k *Key) { k.Scopes = nil }},
		{"unknown scope", func(k *Key) { k.Scopes = []Scope{ScopeRead, "root"} }},
		{"no creation time", func(k *Key) { k.CreatedAt = time.Time{} }},
		{"expires before creation", func(k *Key) { k.ExpiresAt = &earlier }},
		{"expires at creation", func(k *Key) { k.ExpiresAt = &created }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := valid()
			tt.modify(&k)
			if err := k.Validate(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}

// secretPattern is the pattern SecretPrefix's comment gives secret scanners.
var secretPattern = regexp.MustCompile(`^ferry_[a-z2-7]{52}$`)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		secret, hash, prefix := Generate()
		if !secretPattern.MatchString(secret) {
			t.Fatalf("secret %q does not match %s", secret, secretPattern)
		}
		if seen[secret] || seen[prefix] {
			t.Fatalf("secret %q or prefix %q repeats", secret, prefix)
		}
		seen[secret], seen[prefix] = true, true
		if len(hash) != 32 || !Verify(secret, hash) {
			t.Errorf("hash %x of %q: want its SHA-256", hash, secret)
		}
		if prefix != secret[:14] {
			t.Errorf("prefix = %q, want the first 14 characters of %q", prefix, secret)
		}
		if _, ok := Parse(newRequest(map[string]string{"X-API-Key": secret})); !ok {
			t.Errorf("Parse rejects generated secret %q", secret)
		}
	}
}

func TestVerify(t *testing.T) {
	secret, hash, _ := Generate()
	other, _, _ := Generate()
	tests := []struct {
		name   string
		secret string
		hash   []byte
		want   bool
	}{
		{"match", secret, hash, true},
		{"other secret", other, hash, false},
		{"truncated hash", secret, hash[:31], false},
		{"no hash", secret, nil, false},
	}
	for _, tt := range tests {
		if got := Verify(tt.secret, tt.hash); got != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// newRequest returns a GET request with headers.
func newRequest(headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/alerts", nil)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func TestParse(t *testing.T) {
	long := strings.Repeat("k", MaxSecret+1)
	tests := []struct {
		name    string
		headers map[string]string
		want    string
		ok      bool
	}{
		{"Key scheme", map[string]string{"Authorization": "Key ferry_abc"}, "ferry_abc", true},
		{"Bearer scheme", map[string]string{"Authorization": "Bearer ferry_abc"}, "ferry_abc", true},
		{"scheme in any case", map[string]string{"Authorization": "kEY ferry_abc"}, "ferry_abc", true},
		{"extra spaces", map[string]string{"Authorization": "  Key   ferry_abc  "}, "ferry_abc", true},
		{"X-API-Key", map[string]string{"X-API-Key": "ferry_abc"}, "ferry_abc", true},
		{"Authorization first", map[string]string{"Authorization": "Key one", "X-API-Key": "two"}, "one", true},
		{"Basic falls back to X-API-Key", map[string]string{"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": "two"}, "two", true},
		{"none", nil, "", false},
		{"Basic only", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, "", false},
		{"scheme without key", map[string]string{"Authorization": "Key"}, "", false},
		{"scheme and spaces", map[string]string{"Authorization": "Key    "}, "", false},
		{"key without scheme", map[string]string{"Authorization": "ferry_abc"}, "", false},
		{"space inside", map[string]string{"Authorization": "Key ferry abc"}, "", false},
		{"empty X-API-Key", map[string]string{"X-API-Key": ""}, "", false},
		{"too long", map[string]string{"X-API-Key": long}, "", false},
		{"not ASCII", map[string]string{"X-API-Key": "ferry_ключ"}, "", false},
		{"control character", map[string]string{"X-API-Key": "ferry_\x7f"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(newRequest(tt.headers))
			if got != tt.want || ok != tt.ok {
				t.Errorf("Parse = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzParse checks that whatever headers arrive, Parse either finds nothing or returns a
// well-formed key that one of the headers contains.
func FuzzParse(f *testing.F) {
	f.Add("Key ferry_abc", "")
	f.Add("Bearer x", "y")
	f.Add("Basic dXNlcjpwYXNz", "ferry_abc")
	f.Add("", "")
	f.Add("Key \t ferry_abc", " z ")
	f.Fuzz(func(t *testing.T, authorization, xAPIKey string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{authorization}
		r.Header["X-Api-Key"] = []string{xAPIKey}
		key, ok := Parse(r)
		if !ok {
			if key != "" {
				t.Fatalf("Parse = %q, false; want no key with false", key)
			}
			return
		}
		if !wellFormed(key) {
			t.Fatalf("Parse = %q, which is not well formed", key)
		}
		if !strings.Contains(authorization, key) && !strings.Contains(xAPIKey, key) {
			t.Fatalf("Parse = %q, found in neither header (%q, %q)", key, authorization, xAPIKey)
		}
	})
}
