package bufpool_test

import (
	"testing"

	"github.com/ferrycd/ferry/internal/bufpool"
)

// TestPool: buffers come back empty with the pool's capacity, and one over the pool's max is
// not kept (the pool then makes a new one of the starting size).
func TestPool(t *testing.T) {
	p := bufpool.New(64, 128)
	b := p.Get()
	if len(b) != 0 || cap(b) < 64 {
		t.Fatalf("Get = len %d cap %d, want an empty buffer of 64", len(b), cap(b))
	}
	p.Put(append(b, "data"...))
	if b := p.Get(); len(b) != 0 {
		t.Errorf("Get after Put = %q, want it empty", b)
	}
	p.Put(make([]byte, 0, 1024))
	for range 10 {
		if b := p.Get(); cap(b) > 128 {
			t.Fatalf("Get = cap %d: a buffer over the max was kept", cap(b))
		}
	}
}
