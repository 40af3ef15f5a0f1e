package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// errClosed answers the writes still waiting for the group committer when the DB closes.
var errClosed = errors.New("store is closed")

// maxGroup caps how many waiting writes one group transaction takes, which bounds how long
// the first of them waits for the last.
const maxGroup = 128

// A group waits for the writes announced with expect at most commitDelay, and looks for
// them every commitPoll. Waiting makes groups larger, and a larger group commits more writes
// for each page it copies to the WAL and each flush: like PostgreSQL's commit_delay, but only
// when writes are known to be on their way, so a lone write never waits.
const (
	commitDelay = 300 * time.Microsecond
	commitPoll  = 50 * time.Microsecond
)

// groupCommitter stores the writes that wait for SQLite's one writer connection in one
// transaction, so that a burst of small writes pays for one commit (and one fsync) instead of
// one each. A write that fails is rolled back with the whole transaction, and the others are
// stored again without it; a write alone runs in a transaction of its own, as inTx would.
//
// It changes no guarantee: a write is durable when its call returns nil, writes of a group
// commit or fail together only when the commit itself fails, and no write sees another's
// uncommitted changes except those of earlier writes in its own group, which are about to
// commit with it (as they would have committed before it without grouping).
type groupCommitter struct {
	db       *DB
	requests chan *groupWrite
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	// waiting counts the writes handed to write and not yet taken by the committer; groups
	// counts the transactions that stored more than one write. Tests read them.
	waiting, groups atomic.Int64
	// collecting is the size of the group being gathered, zero between groups; tests read
	// it.
	collecting atomic.Int64
	// expected counts the writes announced with expect and not yet ready.
	expected atomic.Int64
	// delay is commitDelay in nanoseconds, longer in tests.
	delay atomic.Int64
}

type groupWrite struct {
	ctx    context.Context
	fn     func(context.Context, *sql.Tx) error
	result chan error
}

func newGroupCommitter(db *DB) *groupCommitter {
	g := &groupCommitter{
		db:       db,
		requests: make(chan *groupWrite),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	g.delay.Store(int64(commitDelay))
	go g.run()
	return g
}

// close stops the committer once the group it is storing, if any, is done.
func (g *groupCommitter) close() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
}

// write runs fn in a transaction, possibly shared with other writes, and returns once that
// transaction has committed or fn's changes were rolled back. A write whose ctx ends before
// it starts does not run; once fn has started, it runs to the end under a context that does
// not end, because SQLite answers an interrupted INSERT, UPDATE or DELETE by rolling back the
// whole transaction, which would fail every other write of the group.
func (g *groupCommitter) write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	w := &groupWrite{ctx: ctx, fn: fn, result: make(chan error, 1)}
	g.waiting.Add(1)
	select {
	case g.requests <- w:
	case <-ctx.Done():
		g.waiting.Add(-1)
		return ctx.Err()
	case <-g.stop:
		g.waiting.Add(-1)
		return errClosed
	}
	return <-w.result
}

func (g *groupCommitter) run() {
	defer close(g.done)
	group := make([]*groupWrite, 0, maxGroup)
	tick := time.NewTimer(time.Hour)
	tick.Stop()
	for {
		select {
		case w := <-g.requests:
			g.waiting.Add(-1)
			group = append(group[:0], w)
		case <-g.stop:
			return
		}
		g.collecting.Store(1)
		g.collect(&group, tick)
		g.commit(group)
		g.collecting.Store(0)
		clear(group) // let the finished writes' closures go
	}
}

// collect adds the writes waiting to group, up to maxGroup, and then, while writes announced
// with expect are still being prepared, waits for them up to g.delay.
func (g *groupCommitter) collect(group *[]*groupWrite, tick *time.Timer) {
	take := func(w *groupWrite) {
		g.waiting.Add(-1)
		*group = append(*group, w)
		g.collecting.Store(int64(len(*group)))
	}
	var deadline time.Time
	for len(*group) < maxGroup {
		select {
		case w := <-g.requests:
			take(w)
			continue
		default:
		}
		if g.expected.Load() <= 0 {
			return
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(time.Duration(g.delay.Load()))
		} else if !now.Before(deadline) {
			return
		}
		tick.Reset(commitPoll)
		select {
		case w := <-g.requests:
			take(w)
			tick.Stop()
		case <-tick.C:
		}
	}
}

// expect tells the committer that a write is being prepared and will soon be handed to
// write, so that a group about to commit waits for it a little (see collect); the function
// it returns, called once the write is ready or abandoned, takes that back. It may be called
// more than once.
func (g *groupCommitter) expect() (ready func()) {
	if g == nil {
		return func() {}
	}
	g.expected.Add(1)
	done := false
	return func() {
		if !done {
			done = true
			g.expected.Add(-1)
		}
	}
}

// commit stores one group and answers each write in it.
func (g *groupCommitter) commit(group []*groupWrite) {
	live := group[:0:0]
	for _, w := range group {
		if err := w.ctx.Err(); err != nil {
			w.result <- err
			continue
		}
		live = append(live, w)
	}
	for len(live) > 1 {
		failed, err := g.together(live)
		if failed < 0 {
			for _, w := range live {
				w.result <- err
			}
			return
		}
		// The write that failed is answered; the others, whose changes were rolled back
		// with it, are stored again without it.
		live[failed].result <- err
		live = slices.Delete(live, failed, failed+1)
	}
	if len(live) == 1 {
		live[0].result <- g.alone(live[0])
	}
}

// together stores writes in one transaction. It returns -1 and nil when the transaction
// committed, -1 and an error when it could not begin or commit, and the index of the first
// write that failed and its error otherwise, having rolled the whole transaction back.
//
// Writes run without a savepoint each: a write's failure is rare (a race on a resent event,
// a project deleted under its events), and two statements more for every write cost the one
// writer more than storing a whole group again now and then.
func (g *groupCommitter) together(writes []*groupWrite) (failed int, err error) {
	// The transaction outlives any one write's context.
	tx, err := g.db.write.BeginTx(context.Background(), nil)
	if err != nil {
		return -1, fmt.Errorf("begin: %w", err)
	}
	for i, w := range writes {
		if err := w.run(tx); err != nil {
			_ = tx.Rollback() // it may have ended already: some SQLite errors roll it all back
			return i, err
		}
	}
	if err := tx.Commit(); err != nil {
		return -1, fmt.Errorf("commit: %w", err)
	}
	g.groups.Add(1)
	return -1, nil
}

// run runs the write's fn in tx, under a context that does not end (see write).
func (w *groupWrite) run(tx *sql.Tx) error {
	return w.fn(context.WithoutCancel(w.ctx), tx)
}

// alone stores the write in a transaction of its own.
func (g *groupCommitter) alone(w *groupWrite) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	return g.db.inTx(context.WithoutCancel(w.ctx), true, w.run)
}

// inGroupTx runs a write as inTx does, grouped with other waiting writes where the store
// groups them (SQLite), alone where it does not (PostgreSQL, whose writers run in parallel).
// fn gets the context its statements must use.
func (db *DB) inGroupTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if db.group == nil {
		return db.inTx(ctx, true, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
	return db.group.write(ctx, fn)
}
