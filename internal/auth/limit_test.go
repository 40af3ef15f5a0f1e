package auth

import (
	"strconv"
	"testing"
	"time"
)

func TestLoginLimiter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l := NewLoginLimiter(3, time.Minute)
	l.Now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.Allow("alice"); !ok {
			t.Fatalf("attempt %d refused before the limit", i+1)
		}
		l.Fail("alice")
		now = now.Add(10 * time.Second)
	}
	// Failures at 0, 10 and 20 s: the first leaves the window at 60 s; it is 30 s now.
	if ok, wait := l.Allow("alice"); ok || wait != 30*time.Second {
		t.Errorf("after 3 failures Allow = %v, %v; want refused for 30s", ok, wait)
	}
	if ok, _ := l.Allow("bob"); !ok {
		t.Error("another name is held back too")
	}
	now = now.Add(30 * time.Second)
	if ok, _ := l.Allow("alice"); !ok {
		t.Error("still refused once the oldest failure left the window")
	}
	l.Fail("alice") // failures at 10, 20 and 60 s
	if ok, wait := l.Allow("alice"); ok || wait != 10*time.Second {
		t.Errorf("Allow = %v, %v; want refused for 10s", ok, wait)
	}
	l.Succeed("alice")
	if ok, _ := l.Allow("alice"); !ok {
		t.Error("a success did not clear the failures")
	}

	// A spray of names stays bounded.
	for i := range maxLimiterKeys + 500 {
		l.Fail("name-" + strconv.Itoa(i))
	}
	if n := len(l.failures); n > maxLimiterKeys {
		t.Errorf("the limiter remembers %d keys, more than %d", n, maxLimiterKeys)
	}
}
