package errtrack

import (
	"context"
	"sync"
	"time"
)

// KeyCacheTTL is how long a Gate trusts a DSN key it looked up: a revoked key keeps working
// on a server for at most this long, and a project's new rate limit takes this long to apply.
const KeyCacheTTL = 5 * time.Second

// Gate admits an SDK's request to a project: it authenticates the DSN key, remembering
// accepted keys for KeyCacheTTL (so a busy SDK costs one lookup per key every few seconds,
// not one per event), and enforces the project's events-per-minute quota.
//
// The quota counts events in fixed one-minute windows, per server: with several replicas
// behind a load balancer, a project gets up to its quota from each. An event over the quota
// is refused until its window ends, which is what the Retry-After the SDKs honour says.
type Gate struct {
	Store Store
	// DefaultRateLimit is the events per minute of a project with no limit of its own;
	// zero means no limit.
	DefaultRateLimit int

	mu      sync.Mutex
	keys    map[gateKey]gateEntry
	swept   time.Time
	windows map[int64]*window
}

type gateKey struct {
	project int64
	public  string
}

type gateEntry struct {
	project Project
	fetched time.Time
}

type window struct {
	start time.Time
	count int
}

// Authenticate returns the project whose live key public is (see
// Store.AuthenticateProjectKey).
func (g *Gate) Authenticate(ctx context.Context, projectID int64, public string, now time.Time) (Project, error) {
	k := gateKey{projectID, public}
	g.mu.Lock()
	e, ok := g.keys[k]
	g.mu.Unlock()
	if ok && now.Sub(e.fetched) >= 0 && now.Sub(e.fetched) < KeyCacheTTL {
		return e.project, nil
	}
	p, err := g.Store.AuthenticateProjectKey(ctx, projectID, public)
	if err != nil {
		return Project{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.keys == nil {
		g.keys = map[gateKey]gateEntry{}
	}
	if now.Sub(g.swept) >= KeyCacheTTL {
		for k, e := range g.keys {
			if now.Sub(e.fetched) >= KeyCacheTTL {
				delete(g.keys, k)
			}
		}
		g.swept = now
	}
	g.keys[k] = gateEntry{project: p, fetched: now}
	return p, nil
}

// Admit counts one event against p's quota and reports whether it is within it; when it is
// not, retryAfter is how long until the quota's window ends.
func (g *Gate) Admit(p Project, now time.Time) (ok bool, retryAfter time.Duration) {
	limit := p.RateLimit
	if limit == 0 {
		limit = g.DefaultRateLimit
	}
	if limit <= 0 {
		return true, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.windows == nil {
		g.windows = map[int64]*window{}
	}
	start := now.Truncate(time.Minute)
	w := g.windows[p.ID]
	if w == nil || !w.start.Equal(start) {
		w = &window{start: start}
		g.windows[p.ID] = w
	}
	if w.count >= limit {
		return false, start.Add(time.Minute).Sub(now)
	}
	w.count++
	return true, 0
}
