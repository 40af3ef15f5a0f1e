// Package bufpool lends byte buffers for reuse, so that a hot path that needs a buffer the
// size of its input (a request body, a document) does not allocate one and leave it to the
// garbage collector each time.
package bufpool

import "sync"

// Pool holds buffers for reuse. Its zero value is not usable; make one with New.
type Pool struct {
	pool sync.Pool
	max  int
}

// New returns a pool whose new buffers have capacity size, and which keeps a buffer given
// back only if its capacity is at most max, so that one rare large input does not stay in
// memory for nothing.
func New(size, max int) *Pool {
	p := &Pool{max: max}
	p.pool.New = func() any {
		b := make([]byte, 0, size)
		return &b
	}
	return p
}

// Get returns an empty buffer, with room to grow into.
func (p *Pool) Get() []byte { return (*p.pool.Get().(*[]byte))[:0] }

// Put gives b back. Nothing may use b, or any slice of it, afterwards.
func (p *Pool) Put(b []byte) {
	if cap(b) == 0 || cap(b) > p.max {
		return
	}
	b = b[:0]
	p.pool.Put(&b)
}
