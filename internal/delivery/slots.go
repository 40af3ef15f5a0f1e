package delivery

import "context"

// A reconcile holds one of Options.Concurrency sync slots while it works: it reads git,
// renders, dry-runs, applies, records the release and writes the status. It gives its slot
// back while it only waits for the cluster: for applied objects to become healthy, for a hook
// Job to finish, for a hook to be deleted. The work the API server is asked for stays bounded
// by Concurrency, but a sync waiting for a slow rollout, or for a Deployment that never
// starts until its health timeout, does not keep other Applications from syncing. With a
// worker held for each sync's whole wait, as in Flux's kustomize-controller when it waits
// for health, twenty such waits stop every other Application of a default Ferry for as
// long as they last.
//
// A side effect: a wait whose Deployment changed is often back in line for a slot while the
// Deployment's controllers finish their status writes, so it reads the Deployment fewer
// times before it is healthy.

// waitingWorkers is how many reconciles, per sync slot, may run at once; the ones beyond
// Concurrency are waiting for the cluster or for a slot.
const waitingWorkers = 4

type slotKey struct{}

// slot is one reconcile's hold on the sync slots. Only that reconcile's goroutine uses it.
type slot struct {
	slots chan struct{}
	held  bool
}

// take blocks until the reconcile holds a slot, or ctx ends.
func (s *slot) take(ctx context.Context) error {
	if s == nil || s.held {
		return nil
	}
	select {
	case s.slots <- struct{}{}:
		s.held = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// give hands the slot back, if the reconcile holds one.
func (s *slot) give() {
	if s != nil && s.held {
		<-s.slots
		s.held = false
	}
}

// withSlot takes a sync slot for one reconcile and returns ctx carrying it; release gives it
// back.
func (r *Reconciler) withSlot(ctx context.Context) (_ context.Context, release func(), _ error) {
	s := &slot{slots: r.slots}
	if err := s.take(ctx); err != nil {
		return ctx, func() {}, err
	}
	return context.WithValue(ctx, slotKey{}, s), s.give, nil
}

// pause runs block, which only waits for the cluster, with the slot of ctx's reconcile given
// back, and takes a slot again before it returns, waiting for one as long as ctx lasts. ctx
// must be the reconcile's own context, not a shorter wait's: a wait that timed out still
// records its failure with a slot held. Without a slot in ctx (a diff, a test), pause only
// runs block.
func pause(ctx context.Context, block func()) {
	s, _ := ctx.Value(slotKey{}).(*slot)
	s.give()
	block()
	// It fails only when ctx has ended, and then every request the reconcile still makes
	// fails at once too.
	_ = s.take(ctx)
}
