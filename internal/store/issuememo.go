package store

import (
	"math/rand/v2"
	"sync"

	"github.com/ferrycd/ferry/internal/errtrack"
)

// maxMemoIssues bounds the issue memo: about 2 KiB an issue, so a few MiB at most.
const maxMemoIssues = 2048

// issueMemo remembers issues this process decoded or wrote, each with the version of its
// document: a random token that every write of the document replaces. An ingest reads the
// version, a few bytes, and decodes the stored document only when the memo does not hold
// that version; most events are of issues seen a moment ago, whose document would otherwise
// be read and decoded again for each one.
//
// A version is never reused, so a remembered issue is exactly the stored document whenever
// the versions match, whatever happened in between: a write that was rolled back leaves
// the old version stored, which the memo then no longer holds, and a write by another
// process stores a version this one never saw. Only SQLite stores keep a memo (a nil memo
// remembers nothing), so that no binary from before versions existed, which rewrites
// documents and leaves their version alone, can be writing beside it. Issues are values
// whose slices are never changed in place, so the memo hands out what it holds.
type issueMemo struct {
	mu     sync.Mutex
	issues map[int64]memoIssue
}

type memoIssue struct {
	version int64
	issue   errtrack.Issue
}

func newIssueMemo() *issueMemo { return &issueMemo{issues: map[int64]memoIssue{}} }

// newIssueVersion returns the version of a new document: random and never zero, the
// version of documents written before versions existed.
func newIssueVersion() int64 {
	for {
		if v := rand.Int64(); v != 0 {
			return v
		}
	}
}

// get returns issue id as of version, if remembered.
func (m *issueMemo) get(id, version int64) (errtrack.Issue, bool) {
	if m == nil || version == 0 {
		return errtrack.Issue{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.issues[id]
	if !ok || e.version != version {
		return errtrack.Issue{}, false
	}
	return e.issue, true
}

// put remembers issue id as of version. A full memo starts over.
func (m *issueMemo) put(id, version int64, is errtrack.Issue) {
	if m == nil || version == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.issues[id]; !ok && len(m.issues) >= maxMemoIssues {
		clear(m.issues)
	}
	m.issues[id] = memoIssue{version: version, issue: is}
}
