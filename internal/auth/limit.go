package auth

import (
	"sync"
	"time"
)

// LoginLimiter refuses logins for a key (a user name) that failed too often
// lately: after Max failures within Window, attempts are refused, without checking the
// password, until the oldest failure leaves the window. A success clears the key. It is the
// brute-force brake Argo CD users know (5 failures in 5 minutes), kept in memory per replica.
type LoginLimiter struct {
	Max    int
	Window time.Duration
	// Now returns the current time; tests set it.
	Now func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
}

// maxLimiterKeys bounds the keys a limiter remembers; past it, keys without recent failures
// are forgotten first, and if all are recent, the oldest are.
const maxLimiterKeys = 10000

// NewLoginLimiter returns a limiter of max failures per window.
func NewLoginLimiter(max int, window time.Duration) *LoginLimiter {
	return &LoginLimiter{Max: max, Window: window, Now: time.Now, failures: map[string][]time.Time{}}
}

// Allow reports whether a login for every one of keys may be tried now, and if not, how long
// until one may.
func (l *LoginLimiter) Allow(keys ...string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	var wait time.Duration
	for _, k := range keys {
		recent := l.recent(k, now)
		if len(recent) >= l.Max {
			wait = max(wait, recent[len(recent)-l.Max].Add(l.Window).Sub(now))
		}
	}
	return wait <= 0, wait
}

// Fail records a failed login for every one of keys.
func (l *LoginLimiter) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	if len(l.failures) >= maxLimiterKeys {
		l.evict(now)
	}
	for _, k := range keys {
		l.failures[k] = append(l.recent(k, now), now)
	}
}

// Succeed forgets the failures of keys.
func (l *LoginLimiter) Succeed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.failures, k)
	}
}

// recent returns key's failures within the window, dropping older ones.
func (l *LoginLimiter) recent(key string, now time.Time) []time.Time {
	fs := l.failures[key]
	i := 0
	for i < len(fs) && !fs[i].After(now.Add(-l.Window)) {
		i++
	}
	if i == len(fs) {
		delete(l.failures, key)
		return nil
	}
	fs = fs[i:]
	l.failures[key] = fs
	return fs
}

// evict forgets the keys without failures in the window, then, if that was not enough (an
// attack spraying names), arbitrary others, until a tenth of the room is free.
func (l *LoginLimiter) evict(now time.Time) {
	for k := range l.failures {
		l.recent(k, now)
	}
	for k := range l.failures {
		if len(l.failures) <= maxLimiterKeys*9/10 {
			break
		}
		delete(l.failures, k)
	}
}
