package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// groupDB opens a file SQLite database, whose writes go through the group committer, with a
// scratch table.
func groupDB(t *testing.T) *DB {
	t.Helper()
	u := url.URL{Scheme: "sqlite", Path: filepath.Join(t.TempDir(), "group.db")}
	db, err := Open(t.Context(), u.String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if db.group == nil {
		t.Fatal("SQLite store has no group committer")
	}
	if _, err := db.write.ExecContext(t.Context(), `CREATE TABLE scratch (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func insertKey(k string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO scratch (k) VALUES (?)`, k)
		return err
	}
}

func storedKeys(t *testing.T, db *DB) map[string]bool {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), `SELECT k FROM scratch`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	keys := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys[k] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// queueBehind holds the committer in a first write until the writes started by start are all
// waiting, then lets it go, so that they make one group.
func queueBehind(t *testing.T, db *DB, n int, start func(i int) error) []error {
	t.Helper()
	release := make(chan struct{})
	held := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.inGroupTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			close(held)
			<-release
			return insertKey("first")(ctx, tx)
		})
	}()
	<-held
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = start(i) })
	}
	// Each writer waits to hand its write to the committer, which takes none while it
	// stores the first.
	for db.group.waiting.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	groups := db.group.groups.Load()
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("first write: %v", err)
	}
	if db.group.groups.Load() == groups {
		t.Fatalf("%d waiting writes were not stored as a group", n)
	}
	return errs
}

func TestGroupCommitFailedWriteRollsBackAlone(t *testing.T) {
	db := groupDB(t)
	boom := errors.New("boom")
	// Two writes of the group fail after changing a row: each is rolled back and
	// answered with its error, and every other write is stored.
	doomed := map[int]bool{7: true, 13: true}
	errs := queueBehind(t, db, 20, func(i int) error {
		if doomed[i] {
			return db.inGroupTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
				if err := insertKey(fmt.Sprint("doomed", i))(ctx, tx); err != nil {
					return err
				}
				return boom
			})
		}
		return db.inGroupTx(t.Context(), insertKey(fmt.Sprint(i)))
	})
	keys := storedKeys(t, db)
	for i, err := range errs {
		switch {
		case doomed[i] && !errors.Is(err, boom):
			t.Errorf("failing write %d returned %v, want %v", i, err, boom)
		case doomed[i] && keys[fmt.Sprint("doomed", i)]:
			t.Errorf("failed write %d's row was committed", i)
		case !doomed[i] && err != nil:
			t.Errorf("write %d: %v", i, err)
		case !doomed[i] && !keys[fmt.Sprint(i)]:
			t.Errorf("write %d returned nil but its row is missing", i)
		}
	}
}

func TestGroupCommitWriteThatEndsTheTransaction(t *testing.T) {
	db := groupDB(t)
	// A write whose failure ends the whole transaction (as SQLite does for some errors)
	// must not take the others with it: they are stored again on their own.
	errs := queueBehind(t, db, 10, func(i int) error {
		if i == 3 {
			return db.inGroupTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `ROLLBACK`)
				if err == nil {
					err = errors.New("rolled back")
				}
				return err
			})
		}
		return db.inGroupTx(t.Context(), insertKey(fmt.Sprint(i)))
	})
	keys := storedKeys(t, db)
	for i, err := range errs {
		if i == 3 {
			if err == nil {
				t.Error("the write that ended the transaction returned nil")
			}
			continue
		}
		if err != nil || !keys[fmt.Sprint(i)] {
			t.Errorf("write %d: err %v, stored %v", i, err, keys[fmt.Sprint(i)])
		}
	}
}

func TestGroupCommitCancelledBeforeStart(t *testing.T) {
	db := groupDB(t)
	ctx, cancel := context.WithCancel(t.Context())
	for i, err := range queueBehind(t, db, 5, func(i int) error {
		c := t.Context()
		if i == 2 {
			c = ctx
		}
		return db.inGroupTx(c, insertKey(fmt.Sprint(i)))
	}) {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	cancel()
	// Cancelled after it ran: it is stored (the call may have returned before the cancel).
	if !storedKeys(t, db)["2"] {
		t.Error("a write cancelled after it was stored is missing")
	}
	if err := db.inGroupTx(ctx, insertKey("late")); !errors.Is(err, context.Canceled) {
		t.Errorf("write with a cancelled context = %v, want context.Canceled", err)
	}
	if storedKeys(t, db)["late"] {
		t.Error("a write cancelled before it started was stored")
	}
}

func TestGroupCommitAfterClose(t *testing.T) {
	db := groupDB(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.inGroupTx(t.Context(), insertKey("x")); !errors.Is(err, errClosed) {
		t.Errorf("write after Close = %v, want %v", err, errClosed)
	}
}

// TestHotStatementsOnANewConnection: the writer's prepared statements are prepared again
// on a connection that replaces the one they were prepared on.
func TestHotStatementsOnANewConnection(t *testing.T) {
	db := groupDB(t)
	if len(db.prepared) == 0 || len(db.prepared) != len(hotQueries) {
		t.Fatalf("%d statements prepared, want the %d hot ones", len(db.prepared), len(hotQueries))
	}
	// Closing the idle writer connection makes the next write open another.
	db.write.SetMaxIdleConns(0)
	db.write.SetMaxIdleConns(1)
	if db.write.Stats().MaxIdleClosed == 0 {
		t.Fatal("the writer's connection is still open")
	}
	err := db.inTx(t.Context(), true, func(tx *sql.Tx) error {
		var issue int64
		return db.queryRow(t.Context(), tx, qEventIssue, 1, "no such event").Scan(&issue)
	})
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("a hot query on the new connection = %v, want sql.ErrNoRows", err)
	}
}

// TestGroupCommitWaitsForExpectedWrites: a group waits for a write announced with expect
// until it is handed over, and stores it with the writes already taken; without an
// announcement, a lone write does not wait.
func TestGroupCommitWaitsForExpectedWrites(t *testing.T) {
	db := groupDB(t)
	db.group.delay.Store(int64(time.Hour)) // only the announcement's end stops the wait
	noLongerThan := func(what string, done <-chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s has not returned after a minute: the committer waits for a write nobody announced", what)
		}
	}

	lone := make(chan error, 1)
	go func() { lone <- db.inGroupTx(t.Context(), insertKey("lone")) }()
	noLongerThan("a lone write", lone)

	ready := db.group.expect()
	groups := db.group.groups.Load()
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { first <- db.inGroupTx(t.Context(), insertKey("first")) }()
	until(t, "the committer to take the first write", func() bool { return db.group.collecting.Load() == 1 })
	go func() { second <- db.inGroupTx(t.Context(), insertKey("second")) }()
	// The committer takes the second into the group and still waits for the announced write.
	until(t, "the committer to take the second write into the group", func() bool { return db.group.collecting.Load() == 2 })
	select {
	case err := <-first:
		t.Fatalf("the first write returned (%v) while an announced write was still being prepared", err)
	default:
	}
	ready()
	ready() // a second call changes nothing
	noLongerThan("the first write", first)
	noLongerThan("the second write", second)
	if got := db.group.groups.Load() - groups; got != 1 {
		t.Errorf("the writes were stored in %d groups, want 1", got)
	}
	if db.group.expected.Load() != 0 {
		t.Errorf("expected = %d after the announcement ended, want 0", db.group.expected.Load())
	}
	keys := storedKeys(t, db)
	for _, k := range []string{"lone", "first", "second"} {
		if !keys[k] {
			t.Errorf("row %q is missing", k)
		}
	}
}

// until polls cond until it holds, and fails the test if it does not within a minute.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}
