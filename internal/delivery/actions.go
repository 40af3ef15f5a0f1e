package delivery

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/release"
)

// What people ask of an Application from outside the engine, through `ferry app` or the
// panel: the merge patches that ask for a sync, pin a rollback and resume, and the rule for
// which history entry a rollback may pin. Both front ends use these, so they ask the same.

// ErrSuspended refuses a sync or rollback of a suspended Application: resume removes a pin, so
// a pin set now would never be synced. ErrNoRollback says no history entry can be rolled to.
var (
	ErrSuspended  = errors.New("is suspended")
	ErrNoRollback = errors.New("nothing to roll back to")
)

// SyncRequest returns a new value for the sync-requested annotation: the time, unique per
// request, which the sync's status echoes back.
func SyncRequest() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// SyncPatch is the merge patch that asks for a sync now, request req.
func SyncPatch(req string) map[string]any {
	return annotations(map[string]any{v1alpha1.AnnotationSyncRequested: req})
}

// RollbackPatch pins the Application to revision and asks for a sync, request req.
func RollbackPatch(revision, req string) map[string]any {
	return annotations(map[string]any{v1alpha1.AnnotationRollbackTo: revision, v1alpha1.AnnotationSyncRequested: req})
}

// ResumePatch resumes a suspended Application and ends a rollback pin.
func ResumePatch() map[string]any {
	p := annotations(map[string]any{v1alpha1.AnnotationRollbackTo: nil})
	p["spec"] = map[string]any{"suspend": false}
	return p
}

// annotations is a merge patch of metadata.annotations; a nil value removes the key.
func annotations(a map[string]any) map[string]any {
	return map[string]any{"metadata": map[string]any{"annotations": a}}
}

// HistoryNewestFirst returns a copy of the Application's history ordered by ID, newest first.
func HistoryNewestFirst(app *v1alpha1.Application) []v1alpha1.HistoryEntry {
	h := slices.Clone(app.Status.History)
	slices.SortStableFunc(h, func(x, y v1alpha1.HistoryEntry) int { return cmp.Compare(y.ID, x.ID) })
	return h
}

// RollbackTarget picks the history entry with the given ID, which must be a successful sync,
// or with id 0 the newest successful sync of a revision other than the current one. Refusals
// wrap ErrNoRollback; a suspended Application is refused with ErrSuspended.
func RollbackTarget(app *v1alpha1.Application, id int64) (v1alpha1.HistoryEntry, error) {
	if app.Spec.Suspend {
		return v1alpha1.HistoryEntry{}, ErrSuspended
	}
	succeeded := string(release.ResultSucceeded)
	history := HistoryNewestFirst(app)
	if id != 0 {
		i := slices.IndexFunc(history, func(h v1alpha1.HistoryEntry) bool { return h.ID == id })
		switch {
		case i < 0:
			return v1alpha1.HistoryEntry{}, fmt.Errorf("%w: no history entry %d", ErrNoRollback, id)
		case history[i].Result != succeeded:
			return v1alpha1.HistoryEntry{}, fmt.Errorf("%w: history entry %d (revision %s) is %s, not %s",
				ErrNoRollback, id, short(history[i].Revision), history[i].Result, succeeded)
		}
		return history[i], nil
	}
	current := app.Status.Sync.Revision
	for _, h := range history {
		if h.Result == succeeded && h.Revision != current {
			return h, nil
		}
	}
	return v1alpha1.HistoryEntry{}, fmt.Errorf("%w: no successful sync of a revision other than the current %s in the history",
		ErrNoRollback, cmp.Or(short(current), "(none)"))
}
