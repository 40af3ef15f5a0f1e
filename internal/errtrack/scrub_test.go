package errtrack

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestNormalizeFiltersCredentials plants a canary in every place an SDK may put a
// credential and checks that the document Ferry stores holds none of them, and still holds
// what is not secret.
func TestNormalizeFiltersCredentials(t *testing.T) {
	const canary = "c4n4ry-s3cr3t"
	payload := `{
		"event_id": "0123456789abcdef0123456789abcdef",
		"message": "boom",
		"request": {
			"url": "https://user:` + canary + `@shop.example.com/pay?step=2&access_token=` + canary + `",
			"method": "POST",
			"headers": {"Authorization": "Bearer ` + canary + `", "X-Api-Key": "` + canary + `", "User-Agent": "kept-agent"},
			"cookies": "sessionid=` + canary + `",
			"query_string": "step=2&Password=` + canary + `",
			"data": {"card": {"cvc_secret": "` + canary + `"}, "item": "kept-item"},
			"env": {"DB_PASSWORD": "` + canary + `"}
		},
		"breadcrumbs": [{"message": "login", "data": {"token": "` + canary + `", "user": "kept-user"}}],
		"extra": {"api_key": "` + canary + `", "nested": {"list": [{"csrf": "` + canary + `"}]}},
		"contexts": {"auth": {"id": "` + canary + `"}, "app": {"session": "` + canary + `"}},
		"user": {"id": "u1", "data": {"private_note": "` + canary + `"}},
		"exception": {"values": [{"type": "E", "stacktrace": {"frames": [{"function": "f", "vars": {"pwd": "` + canary + `"}}]}}]}
	}`
	e, err := DecodeEvent([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	e.Normalize()
	doc, err := MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(doc, []byte(canary)) {
		t.Errorf("stored document holds the canary:\n%s", doc)
	}
	for _, kept := range []string{"kept-agent", "kept-item", "kept-user", "step=2", "shop.example.com"} {
		if !bytes.Contains(doc, []byte(kept)) {
			t.Errorf("stored document lost %q:\n%s", kept, doc)
		}
	}
	// Normalize is idempotent, scrubbing included.
	again := e
	again.Normalize()
	if doc2, _ := MarshalEvent(again); !bytes.Equal(doc, doc2) {
		t.Errorf("a second Normalize changed the document:\n%s\n%s", doc, doc2)
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "X-CSRF-Token": true, "Cookie": true, "password": true, "DB_PASSWD": true,
		"api_key": true, "sentry_dsn": true, "Content-Type": false, "user": false, "step": false,
	} {
		if got := SecretName(name); got != want {
			t.Errorf("SecretName(%q) = %t, want %t", name, got, want)
		}
	}
}

// TestScrubRawKeepsNumbers: a value decoded to be scrubbed keeps its numbers as sent.
func TestScrubRawKeepsNumbers(t *testing.T) {
	got := scrubRaw(json.RawMessage(`{"token":"x","id":12345678901234567890,"f":0.1}`))
	if !strings.Contains(string(got), "12345678901234567890") || !strings.Contains(string(got), "0.1") {
		t.Errorf("scrubRaw = %s, want the numbers unchanged", got)
	}
}

func TestScrubURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://ghp_t0ken@git.example.com/repo.git":    "https://%5BFiltered%5D@git.example.com/repo.git",
		"https://ann:pa55@shop.example.com/a?x=1":       "https://%5BFiltered%5D@shop.example.com/a?x=1",
		"https://shop.example.com/a?step=2&api_key=k3y": "https://shop.example.com/a?api_key=%5BFiltered%5D&step=2",
		"https://shop.example.com/checkout":             "https://shop.example.com/checkout",
	} {
		if got := ScrubURL(raw); got != want {
			t.Errorf("ScrubURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
