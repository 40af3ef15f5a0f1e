package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

var _ errtrack.Store = (*DB)(nil)

const (
	projectColumns    = `id, name, rate_limit, created_at`
	projectKeyColumns = `id, project_id, public, label, created_at, revoked_at`
	// issueColumns are what an issue is read from: the document, and the columns it does
	// not hold (its ID, assigned after the first write of the document, and the spike window).
	issueColumns      = `id, project_id, doc, window_start, window_count`
	errorEventColumns = `id, project_id, issue_id, received_at, doc`
)

// The bounds of the error tracker's lists.
const (
	defaultIssueLimit = 50
	maxIssueLimit     = 1000
	maxIssueEvents    = 100
)

// errEventRace reports that the event's ID was stored by a concurrent ingest between the
// duplicate check and the insert, which happens only on PostgreSQL and only when the two
// events differ in fingerprint (a resent event has the same one, and the fingerprint's lock
// orders the two). IngestEvent tries once more, and then finds the duplicate.
var errEventRace = errors.New("event stored concurrently")

// The statements of an ingest and of an issue's update, prepared once on SQLite (see hot).
// They run in write transactions only.
var (
	qEventIssue             = hot(`SELECT issue_id FROM error_events WHERE project_id = ? AND event_id = ?`)
	qIssueByID              = hot(`SELECT ` + issueColumns + ` FROM issues WHERE id = ?`)
	qIssueHeadByFingerprint = hot(`SELECT id, version, window_start, window_count FROM issues
		WHERE project_id = ? AND fingerprint = ?`)
	qIssueDoc    = hot(`SELECT doc FROM issues WHERE id = ?`)
	qInsertIssue = hot(`INSERT INTO issues (project_id, fingerprint, status, level, title, culprit,
		first_seen, last_seen, count, users_affected, first_release, last_release, resolved_in, window_start, window_count,
		doc, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
	qUpdateIssue = hot(`UPDATE issues SET status = ?, level = ?, title = ?, culprit = ?,
		first_seen = ?, last_seen = ?, count = ?, users_affected = ?, first_release = ?, last_release = ?, resolved_in = ?,
		window_start = ?, window_count = ?, doc = ?, version = ? WHERE id = ?`)
	qAddIssueUser = hot(`INSERT INTO issue_users (issue_id, user_key) VALUES (?, ?)
		ON CONFLICT (issue_id, user_key) DO NOTHING`)
	qInsertErrorEvent = hot(`INSERT INTO error_events
		(project_id, issue_id, event_id, received_at, release, environment, doc) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (project_id, event_id) DO NOTHING RETURNING id`)
	qCountPerRelease = hot(`INSERT INTO issue_releases
		(issue_id, release, environment, count, first_seen, last_seen) VALUES (?, ?, ?, 1, ?, ?)
		ON CONFLICT (issue_id, release, environment) DO UPDATE SET count = issue_releases.count + 1,
			first_seen = CASE WHEN excluded.first_seen < issue_releases.first_seen
				THEN excluded.first_seen ELSE issue_releases.first_seen END,
			last_seen = CASE WHEN excluded.last_seen > issue_releases.last_seen
				THEN excluded.last_seen ELSE issue_releases.last_seen END`)
	qCountPerHour = hot(`INSERT INTO issue_hours (issue_id, hour, count) VALUES (?, ?, 1)
		ON CONFLICT (issue_id, hour) DO UPDATE SET count = issue_hours.count + 1`)
	// A release's revision starts with a release name's SHA. Not LIKE: SQLite prepares a
	// statement again for each new pattern bound to LIKE, which was nearly a third of the
	// writer's time per event.
	qDeployOrder = hot(`SELECT MAX(id) FROM releases
		WHERE application = ? AND environment = ? AND substr(LOWER(revision), 1, ?) = ? AND result = ?`)
	qReleaseOfEvent = hot(`SELECT ` + releaseColumns + ` FROM releases
		WHERE application = ? AND environment IN (?) AND substr(LOWER(revision), 1, ?) = ?
		ORDER BY CASE WHEN result = ? THEN 0 ELSE 1 END, id DESC LIMIT 1`)
)

// CreateProject validates p and stores it, setting its ID and creation time, with a first
// key, labelled "default". A name another project has is an error wrapping
// errtrack.ErrConflict.
func (db *DB) CreateProject(ctx context.Context, p errtrack.Project) (errtrack.Project, errtrack.ProjectKey, error) {
	if err := p.Validate(); err != nil {
		return errtrack.Project{}, errtrack.ProjectKey{}, fmt.Errorf("create project: %w", err)
	}
	p.ID, p.CreatedAt = 0, storedTime(time.Now())
	var k errtrack.ProjectKey
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.dialect.q(`INSERT INTO projects (name, rate_limit, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING RETURNING id`), p.Name, p.RateLimit, db.dialect.time(p.CreatedAt)).Scan(&p.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: another project has the name", errtrack.ErrConflict)
		}
		if err != nil {
			return err
		}
		k, err = db.insertProjectKey(ctx, tx, p.ID, "default", p.CreatedAt)
		return err
	})
	if err != nil {
		return errtrack.Project{}, errtrack.ProjectKey{}, fmt.Errorf("create project %s: %w", p.Name, err)
	}
	return p, k, nil
}

// ListProjects returns every project, by name.
func (db *DB) ListProjects(ctx context.Context) ([]errtrack.Project, error) {
	var projects []errtrack.Project
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		projects, err = queryAll(ctx, tx, scanProject, `SELECT `+projectColumns+` FROM projects ORDER BY name`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return projects, nil
}

// GetProject returns the project ref names, by ID or else by name (a name may be all
// digits), or an error wrapping errtrack.ErrNotFound.
func (db *DB) GetProject(ctx context.Context, ref string) (errtrack.Project, error) {
	var p errtrack.Project
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
			if p, err = db.getProject(ctx, tx, id); !errors.Is(err, errtrack.ErrNotFound) {
				return err
			}
		}
		var err error
		p, err = scanProject(tx.QueryRowContext(ctx, db.dialect.q(`SELECT `+projectColumns+` FROM projects WHERE name = ?`),
			storedText(ref)))
		if errors.Is(err, sql.ErrNoRows) {
			return errtrack.ErrNotFound
		}
		return err
	})
	if err != nil {
		return errtrack.Project{}, fmt.Errorf("get project %q: %w", ref, err)
	}
	return p, nil
}

// SetProjectRateLimit sets how many events a minute a project accepts; zero means the
// server's default, and a negative limit is an error wrapping errtrack.ErrInvalid.
func (db *DB) SetProjectRateLimit(ctx context.Context, projectID int64, perMinute int) (errtrack.Project, error) {
	if perMinute < 0 {
		return errtrack.Project{}, fmt.Errorf("set rate limit of project %d: %w: %d events a minute is negative",
			projectID, errtrack.ErrInvalid, perMinute)
	}
	var p errtrack.Project
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		var err error
		p, err = scanProject(tx.QueryRowContext(ctx, db.dialect.q(`UPDATE projects SET rate_limit = ? WHERE id = ?
			RETURNING `+projectColumns), perMinute, projectID))
		if errors.Is(err, sql.ErrNoRows) {
			return errtrack.ErrNotFound
		}
		return err
	})
	if err != nil {
		return errtrack.Project{}, fmt.Errorf("set rate limit of project %d: %w", projectID, err)
	}
	return p, nil
}

// ProjectKeys returns a project's keys, revoked ones included, oldest first.
func (db *DB) ProjectKeys(ctx context.Context, projectID int64) ([]errtrack.ProjectKey, error) {
	var keys []errtrack.ProjectKey
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		if _, err := db.getProject(ctx, tx, projectID); err != nil {
			return err
		}
		var err error
		keys, err = queryAll(ctx, tx, scanProjectKey, db.dialect.q(`SELECT `+projectKeyColumns+` FROM project_keys
			WHERE project_id = ? ORDER BY id`), projectID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("keys of project %d: %w", projectID, err)
	}
	return keys, nil
}

// CreateProjectKey adds a key to a project, beside the ones it has: rotating a key is
// creating the new one, moving the SDKs to it, and revoking the old one. A label longer
// than errtrack.MaxNameLength is an error wrapping errtrack.ErrInvalid.
func (db *DB) CreateProjectKey(ctx context.Context, projectID int64, label string) (errtrack.ProjectKey, error) {
	if len(label) > errtrack.MaxNameLength {
		return errtrack.ProjectKey{}, fmt.Errorf("create key of project %d: %w: label longer than %d bytes",
			projectID, errtrack.ErrInvalid, errtrack.MaxNameLength)
	}
	var k errtrack.ProjectKey
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		if _, err := db.getProject(ctx, tx, projectID); err != nil {
			return err
		}
		var err error
		k, err = db.insertProjectKey(ctx, tx, projectID, storedText(label), storedTime(time.Now()))
		return err
	})
	if err != nil {
		return errtrack.ProjectKey{}, fmt.Errorf("create key of project %d: %w", projectID, err)
	}
	return k, nil
}

// insertProjectKey stores a new key with a random public part.
func (db *DB) insertProjectKey(ctx context.Context, tx *sql.Tx, projectID int64, label string, now time.Time) (errtrack.ProjectKey, error) {
	public := make([]byte, 16)
	if _, err := rand.Read(public); err != nil {
		return errtrack.ProjectKey{}, err
	}
	k := errtrack.ProjectKey{ProjectID: projectID, Public: hex.EncodeToString(public), Label: label, CreatedAt: now}
	err := tx.QueryRowContext(ctx, db.dialect.q(`INSERT INTO project_keys (project_id, public, label, created_at)
		VALUES (?, ?, ?, ?) RETURNING id`), k.ProjectID, k.Public, k.Label, db.dialect.time(k.CreatedAt)).Scan(&k.ID)
	return k, err
}

// RevokeProjectKey revokes the project's key that ref names, by ID or by public part, and
// returns it. A ref that names none of the project's keys is an error wrapping
// errtrack.ErrNotFound; a key revoked already, errtrack.ErrConflict.
func (db *DB) RevokeProjectKey(ctx context.Context, projectID int64, ref string) (errtrack.ProjectKey, error) {
	column, arg := "public", any(storedText(ref))
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		column, arg = "id", id // never a public part: 32 digits overflow an int64
	}
	now := storedTime(time.Now())
	var k errtrack.ProjectKey
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		var err error
		k, err = scanProjectKey(tx.QueryRowContext(ctx, db.dialect.q(`SELECT `+projectKeyColumns+` FROM project_keys
			WHERE project_id = ? AND `+column+` = ?`), projectID, arg))
		if errors.Is(err, sql.ErrNoRows) {
			return errtrack.ErrNotFound
		}
		if err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return fmt.Errorf("%w: key %d is revoked already", errtrack.ErrConflict, k.ID)
		}
		// On PostgreSQL a concurrent revoker may have come first; its time stands.
		res, err := tx.ExecContext(ctx, db.dialect.q(`UPDATE project_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`),
			db.dialect.time(now), k.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(fmt.Errorf("%w: key %d was revoked concurrently", errtrack.ErrConflict, k.ID), err)
		}
		k.RevokedAt = &now
		return nil
	})
	if err != nil {
		return errtrack.ProjectKey{}, fmt.Errorf("revoke key %q of project %d: %w", ref, projectID, err)
	}
	return k, nil
}

// AuthenticateProjectKey returns the project whose live key public is. A project that does
// not exist is an error wrapping errtrack.ErrNotFound; a key that is unknown, revoked or
// another project's, errtrack.ErrUnauthorized.
func (db *DB) AuthenticateProjectKey(ctx context.Context, projectID int64, public string) (errtrack.Project, error) {
	var (
		p       errtrack.Project
		owner   int64
		stored  string
		revoked *time.Time
	)
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		if p, err = db.getProject(ctx, tx, projectID); err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, db.dialect.q(`SELECT project_id, public, revoked_at FROM project_keys WHERE public = ?`),
			storedText(public)).Scan(&owner, &stored, nullInstant{&revoked})
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: unknown key", errtrack.ErrUnauthorized)
		}
		return err
	})
	if err != nil {
		return errtrack.Project{}, fmt.Errorf("authenticate key of project %d: %w", projectID, err)
	}
	// As in AuthenticateAPIKey: the index lookup runs in variable time, and the check
	// here guards against anything the database might match loosely.
	switch {
	case subtle.ConstantTimeCompare([]byte(stored), []byte(public)) != 1:
		err = fmt.Errorf("%w: unknown key", errtrack.ErrUnauthorized)
	case owner != projectID:
		err = fmt.Errorf("%w: the key is another project's", errtrack.ErrUnauthorized)
	case revoked != nil:
		err = fmt.Errorf("%w: the key is revoked", errtrack.ErrUnauthorized)
	}
	if err != nil {
		return errtrack.Project{}, fmt.Errorf("authenticate key of project %d: %w", projectID, err)
	}
	return p, nil
}

func (db *DB) getProject(ctx context.Context, tx *sql.Tx, id int64) (errtrack.Project, error) {
	p, err := scanProject(tx.QueryRowContext(ctx, db.dialect.q(`SELECT `+projectColumns+` FROM projects WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return errtrack.Project{}, errtrack.ErrNotFound
	}
	return p, err
}

func scanProject(row rowScanner) (errtrack.Project, error) {
	var p errtrack.Project
	err := row.Scan(&p.ID, &p.Name, &p.RateLimit, instant{&p.CreatedAt})
	return p, err
}

func scanProjectKey(row rowScanner) (errtrack.ProjectKey, error) {
	var k errtrack.ProjectKey
	err := row.Scan(&k.ID, &k.ProjectID, &k.Public, &k.Label, instant{&k.CreatedAt}, nullInstant{&k.RevokedAt})
	return k, err
}

// issueRow is an issue as the store keeps it: the issue, and the spike detector's window,
// which is not part of it.
type issueRow struct {
	issue       errtrack.Issue
	windowStart *time.Time
	windowCount int64
	// version is the random token written with the document (see issueMemo); zero when
	// the row was read without it.
	version int64
}

// IngestEvent groups e, which the caller has normalized, into its project's issue and stores
// it with the issue's counters and what opts.Effects returns, in one transaction. An event
// without a timestamp happened when it arrived, opts.Now. Ingests of one issue take turns,
// across connections and replicas, so concurrent first events of an issue open it once. An
// unknown project is an error wrapping errtrack.ErrNotFound.
func (db *DB) IngestEvent(ctx context.Context, projectID int64, e errtrack.Event, opts errtrack.IngestOptions) (errtrack.Outcome, error) {
	if e.EventID == "" {
		return errtrack.Outcome{}, fmt.Errorf("ingest event: %w: no event ID; normalize the event first", errtrack.ErrInvalid)
	}
	// The group committer may wait for this write while its document is made.
	ready := db.group.expect()
	defer ready()
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	now := storedTime(opts.Now)
	if e.Timestamp.IsZero() {
		e.Timestamp = now
	}
	e.Timestamp = storedTime(e.Timestamp)
	doc, err := errtrack.AppendEvent(docBuffers.Get(), e)
	if err != nil {
		return errtrack.Outcome{}, fmt.Errorf("ingest event %s: document: %w", e.EventID, err)
	}
	// Grouping reads the whole event; it runs here, beside the other ingests, rather than
	// in the transaction, which waits its turn for the one writer. fresh is the issue the
	// event opens if its fingerprint is new.
	fresh := errtrack.NewIssue(projectID, e)
	column := db.eventDoc(doc)
	docBuffers.Put(doc)
	var out errtrack.Outcome
	ready()
	for range 2 {
		err = db.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			out, err = db.ingest(ctx, tx, e, fresh, column, now, opts)
			return err
		})
		if !errors.Is(err, errEventRace) {
			break
		}
	}
	if db.dialect.foreignKeyViolation(err) {
		err = fmt.Errorf("project %d: %w", projectID, errtrack.ErrNotFound)
	}
	if err != nil {
		return errtrack.Outcome{}, fmt.Errorf("ingest event %s: %w", e.EventID, err)
	}
	return out, nil
}

// ingest is IngestEvent's transaction.
func (db *DB) ingest(ctx context.Context, tx *sql.Tx, e errtrack.Event, fresh errtrack.Issue, doc any,
	now time.Time, opts errtrack.IngestOptions) (errtrack.Outcome, error) {
	projectID, fingerprint := fresh.ProjectID, fresh.Fingerprint
	if err := db.dialect.lockKey(ctx, tx, issueLockKey(projectID, fingerprint)); err != nil {
		return errtrack.Outcome{}, err
	}
	// A resent event is found before anything changes. The lock above makes this check
	// final for an event resent with its fingerprint, which is the rule.
	var dupOf int64
	err := db.queryRow(ctx, tx, qEventIssue, projectID, e.EventID).Scan(&dupOf)
	switch {
	case err == nil:
		row, err := issueRowOf(db.queryRow(ctx, tx, qIssueByID, dupOf))
		return errtrack.Outcome{Issue: row.issue, Kind: errtrack.KindDuplicate}, err
	case !errors.Is(err, sql.ErrNoRows):
		return errtrack.Outcome{}, err
	}

	row, err := db.issueByFingerprint(ctx, tx, projectID, fingerprint)
	var out errtrack.Outcome
	switch {
	case errors.Is(err, errtrack.ErrNotFound):
		row = issueRow{issue: fresh}
		out.Kind = errtrack.KindNew
	case err != nil:
		return errtrack.Outcome{}, err
	default:
		prev := row.issue
		out.Previous, out.Kind = &prev, errtrack.KindGrouped
		row.issue = addEvent(row.issue, e, fresh)
		regressed, err := db.regressed(ctx, tx, row.issue, e)
		if err != nil {
			return errtrack.Outcome{}, err
		}
		if regressed {
			if row.issue, err = errtrack.Apply(row.issue, errtrack.ActionReopen, "", now); err != nil {
				return errtrack.Outcome{}, err
			}
			out.Kind = errtrack.KindRegressed
		}
	}
	if opts.Spike.Count > 0 {
		if row.windowStart == nil || now.Sub(*row.windowStart) >= opts.Spike.Window {
			row.windowStart, row.windowCount = &now, 1
		} else {
			row.windowCount++
		}
		out.Spike = row.windowCount == opts.Spike.Count
	}

	user := errtrack.UserKey(e)
	if out.Kind == errtrack.KindNew {
		if err = db.insertIssue(ctx, tx, &row); err != nil {
			return errtrack.Outcome{}, err
		}
		if _, err := db.addIssueUser(ctx, tx, row.issue.ID, user); err != nil {
			return errtrack.Outcome{}, err
		}
	} else {
		added, err := db.addIssueUser(ctx, tx, row.issue.ID, user)
		if err != nil {
			return errtrack.Outcome{}, err
		}
		if added {
			row.issue.UsersAffected++
		}
		if err := db.updateIssue(ctx, tx, &row); err != nil {
			return errtrack.Outcome{}, err
		}
	}
	out.Issue = row.issue

	var eventID int64
	err = db.queryRow(ctx, tx, qInsertErrorEvent, projectID, row.issue.ID, e.EventID, db.dialect.time(now),
		storedText(e.Release), storedText(e.Environment), doc).Scan(&eventID)
	if errors.Is(err, sql.ErrNoRows) {
		return errtrack.Outcome{}, errEventRace
	}
	if err != nil {
		return errtrack.Outcome{}, err
	}
	if err := db.countEvent(ctx, tx, row.issue.ID, e, now); err != nil {
		return errtrack.Outcome{}, err
	}

	if out.Release, err = db.ferryRelease(ctx, tx, e.Release, []string{e.Environment}); err != nil {
		return errtrack.Outcome{}, err
	}
	if opts.Effects != nil {
		eff := opts.Effects(out)
		if err := db.storeEffects(ctx, tx, releaseIDOf(out.Release), eff.Events, eff.Notifications, now); err != nil {
			return errtrack.Outcome{}, err
		}
	}
	return out, nil
}

// issueLockKey serialises the ingests and changes of one issue, which read, change and
// write its document.
func issueLockKey(projectID int64, fingerprint string) string {
	return "ferry.issues\x1f" + strconv.FormatInt(projectID, 10) + "\x1f" + fingerprint
}

// addEvent returns is with one more event, e, counted: its time, release, environment and
// tags. fresh is the issue e alone would open, whose title and culprit were worked out
// before the transaction. The newest event (by its timestamp) gives the issue its title, culprit, level and
// last release, as Sentry does, and an event older than the first moves the first seen time
// and release back. An event without a release leaves the releases as they are, except
// that the first event that has one fills them in when the issue has none.
func addEvent(is errtrack.Issue, e errtrack.Event, fresh errtrack.Issue) errtrack.Issue {
	is.Count++
	if !e.Timestamp.Before(is.LastSeen) {
		is.LastSeen, is.LastEventID = e.Timestamp, e.EventID
		is.Title, is.Culprit, is.Level, is.Platform = fresh.Title, fresh.Culprit, e.Level, e.Platform
		if e.Release != "" {
			is.LastRelease = e.Release
		}
	}
	if e.Timestamp.Before(is.FirstSeen) {
		is.FirstSeen = e.Timestamp
		if e.Release != "" {
			is.FirstRelease = e.Release
		}
	}
	if is.FirstRelease == "" {
		is.FirstRelease = e.Release
	}
	if is.LastRelease == "" {
		is.LastRelease = e.Release
	}
	if e.Environment != "" && !slices.Contains(is.Environments, e.Environment) {
		is.Environments = append(slices.Clip(is.Environments), e.Environment)
	}
	is.TagsSummary = errtrack.AddTags(is.TagsSummary, errtrack.EventTags(e))
	return is
}

// regressed reports whether e reopens is (errtrack.Regressed), ordering releases by their
// latest successful deploy in e's environment.
func (db *DB) regressed(ctx context.Context, tx *sql.Tx, is errtrack.Issue, e errtrack.Event) (bool, error) {
	var orderErr error
	order := func(name string) (int64, bool) {
		app, sha, ok := errtrack.ParseReleaseName(name)
		if !ok || orderErr != nil {
			return 0, false
		}
		var id sql.NullInt64
		// IDs grow in deploy order, and a rollback is a new release: the latest deploy of
		// a revision is its place.
		orderErr = db.queryRow(ctx, tx, qDeployOrder, storedText(app), storedText(e.Environment), len(sha), sha,
			string(release.ResultSucceeded)).Scan(&id)
		return id.Int64, id.Valid
	}
	regressed := errtrack.Regressed(is, e.Release, order)
	if orderErr != nil {
		return false, fmt.Errorf("deploy order: %w", orderErr)
	}
	return regressed, nil
}

// ferryRelease returns Ferry's release that a release name made by errtrack.ReleaseName
// refers to in one of envs: the latest succeeded release of the application whose revision
// starts with the name's SHA, else the latest of any result. It returns nil for any other
// name, or when Ferry deployed no such release.
func (db *DB) ferryRelease(ctx context.Context, tx *sql.Tx, name string, envs []string) (*release.Release, error) {
	app, sha, ok := errtrack.ParseReleaseName(name)
	if !ok || len(envs) == 0 {
		return nil, nil
	}
	args := []any{storedText(app)}
	for _, env := range envs {
		args = append(args, storedText(env))
	}
	args = append(args, len(sha), sha, string(release.ResultSucceeded))
	query := qReleaseOfEvent
	if len(envs) > 1 {
		query = strings.Replace(query, `IN (?)`, `IN (`+placeholders(len(envs))+`)`, 1)
	}
	r, err := scanRelease(db.queryRow(ctx, tx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", name, err)
	}
	return &r, nil
}

func releaseIDOf(r *release.Release) int64 {
	if r == nil {
		return 0
	}
	return r.ID
}

// storeEffects stores what a change causes, in its transaction: events on the timeline of
// the release it concerns, none when there is no release (releaseID zero), and
// notifications, due now, linked to that release.
func (db *DB) storeEffects(ctx context.Context, tx *sql.Tx, releaseID int64, events []release.Event,
	notes []notify.Notification, now time.Time) error {
	if releaseID > 0 {
		for _, e := range events {
			e.ReleaseID = releaseID
			if err := db.insertEvent(ctx, tx, &e); err != nil {
				return err
			}
		}
	}
	for _, n := range notes {
		n.Event.ReleaseID = releaseID
		if _, err := db.enqueue(ctx, tx, n, now); err != nil {
			return err
		}
	}
	return nil
}

// addIssueUser records that user, a UserKey, met the issue, and reports whether that is
// news. The empty key is no user.
func (db *DB) addIssueUser(ctx context.Context, tx *sql.Tx, issueID int64, user string) (bool, error) {
	if user == "" {
		return false, nil
	}
	res, err := db.exec(ctx, tx, qAddIssueUser, issueID, storedText(user))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// countEvent adds e, received at now, to its issue's counts per release and environment and
// per hour.
func (db *DB) countEvent(ctx context.Context, tx *sql.Tx, issueID int64, e errtrack.Event, now time.Time) error {
	at := db.dialect.time(e.Timestamp)
	_, err := db.exec(ctx, tx, qCountPerRelease, issueID, storedText(e.Release), storedText(e.Environment), at, at)
	if err != nil {
		return fmt.Errorf("count per release: %w", err)
	}
	_, err = db.exec(ctx, tx, qCountPerHour, issueID, db.dialect.time(now.Truncate(time.Hour)))
	if err != nil {
		return fmt.Errorf("count per hour: %w", err)
	}
	return nil
}

// UpdateIssue reads an issue, lets change modify it, and stores the result with what
// effects returns, in one transaction, taking turns with the ingest of its events. change
// returns errtrack.ErrConflict (wrapped) for an action the issue's status does not allow;
// it may not change what identifies the issue. The outcome effects gets has no Kind; its
// Release is Ferry's release of the issue's ResolvedIn, or else LastRelease, in one of its
// environments.
func (db *DB) UpdateIssue(ctx context.Context, id int64, change func(errtrack.Issue) (errtrack.Issue, error),
	effects func(errtrack.Outcome) errtrack.Effects) (errtrack.Issue, error) {
	var out errtrack.Outcome
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		row, err := issueRowOf(db.queryRow(ctx, tx, qIssueByID, id))
		if err != nil {
			return err
		}
		if err := db.dialect.lockKey(ctx, tx, issueLockKey(row.issue.ProjectID, row.issue.Fingerprint)); err != nil {
			return err
		}
		if row, err = issueRowOf(db.queryRow(ctx, tx, qIssueByID, id)); err != nil { // as it is now that we hold the lock
			return err
		}
		cur := row.issue
		if row.issue, err = change(cur); err != nil {
			return err
		}
		next := row.issue
		switch {
		case next.ID != cur.ID || next.ProjectID != cur.ProjectID || next.Fingerprint != cur.Fingerprint:
			return fmt.Errorf("%w: the change moves the issue", errtrack.ErrInvalid)
		case !next.Status.Valid():
			return fmt.Errorf("%w: status %q", errtrack.ErrInvalid, next.Status)
		}
		if err := db.updateIssue(ctx, tx, &row); err != nil {
			return err
		}
		out = errtrack.Outcome{Issue: next, Previous: &cur}
		if effects == nil {
			return nil
		}
		name := next.ResolvedIn
		if name == "" {
			name = next.LastRelease
		}
		if out.Release, err = db.ferryRelease(ctx, tx, name, next.Environments); err != nil {
			return err
		}
		eff := effects(out)
		return db.storeEffects(ctx, tx, releaseIDOf(out.Release), eff.Events, eff.Notifications, storedTime(time.Now()))
	})
	if err != nil {
		return errtrack.Issue{}, fmt.Errorf("update issue %d: %w", id, err)
	}
	return out.Issue, nil
}

// GetIssue returns one issue, or an error wrapping errtrack.ErrNotFound.
func (db *DB) GetIssue(ctx context.Context, id int64) (errtrack.Issue, error) {
	var row issueRow
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		row, err = issueRowOf(tx.QueryRowContext(ctx, db.dialect.q(qIssueByID), id))
		return err
	})
	if err != nil {
		return errtrack.Issue{}, fmt.Errorf("get issue %d: %w", id, err)
	}
	return row.issue, nil
}

// issueOrder maps the sorts of FindIssues to their ORDER BY, each the order of an index.
var issueOrder = map[errtrack.IssueSort]string{
	"":                     `last_seen DESC, id`,
	errtrack.SortLastSeen:  `last_seen DESC, id`,
	errtrack.SortFirstSeen: `first_seen DESC, id`,
	errtrack.SortCount:     `count DESC, id`,
}

// FindIssues returns the page of issues q selects, in q's order, and how many it selects in
// all. A limit beyond 1000, a negative offset, or an unknown status or sort is an error
// wrapping errtrack.ErrInvalid.
func (db *DB) FindIssues(ctx context.Context, q errtrack.IssueQuery) (errtrack.IssueList, error) {
	limit := q.Limit
	if limit == 0 {
		limit = defaultIssueLimit
	}
	order, ok := issueOrder[q.Sort]
	switch {
	case limit < 0 || limit > maxIssueLimit:
		return errtrack.IssueList{}, fmt.Errorf("find issues: %w: limit %d, want 1 to %d", errtrack.ErrInvalid, q.Limit, maxIssueLimit)
	case q.Offset < 0:
		return errtrack.IssueList{}, fmt.Errorf("find issues: %w: offset %d is negative", errtrack.ErrInvalid, q.Offset)
	case !ok:
		return errtrack.IssueList{}, fmt.Errorf("find issues: %w: sort %q", errtrack.ErrInvalid, q.Sort)
	}
	var w where
	if q.ProjectID != 0 {
		w.add("project_id = ?", q.ProjectID)
	}
	// An issue is in an environment or a release when one of its events was.
	switch {
	case q.Release != "" && q.Environment != "":
		w.add(`EXISTS (SELECT 1 FROM issue_releases r WHERE r.issue_id = issues.id AND r.release = ? AND r.environment = ?)`,
			storedText(q.Release), storedText(q.Environment))
	case q.Release != "":
		w.add(`EXISTS (SELECT 1 FROM issue_releases r WHERE r.issue_id = issues.id AND r.release = ?)`, storedText(q.Release))
	case q.Environment != "":
		w.add(`EXISTS (SELECT 1 FROM issue_releases r WHERE r.issue_id = issues.id AND r.environment = ?)`,
			storedText(q.Environment))
	}
	if len(q.Status) > 0 {
		args := make([]any, len(q.Status))
		for i, s := range q.Status {
			if !s.Valid() {
				return errtrack.IssueList{}, fmt.Errorf("find issues: %w: status %q", errtrack.ErrInvalid, s)
			}
			args[i] = string(s)
		}
		w.add("status IN ("+placeholders(len(args))+")", args...)
	}
	if len(q.Level) > 0 {
		args := make([]any, len(q.Level))
		for i, l := range q.Level {
			args[i] = storedText(string(l))
		}
		w.add("level IN ("+placeholders(len(args))+")", args...)
	}
	if q.Text != "" {
		pattern := "%" + escapeLike(storedText(strings.ToLower(q.Text))) + "%"
		w.add(`(LOWER(title) LIKE ? ESCAPE '\' OR LOWER(culprit) LIKE ? ESCAPE '\')`, pattern, pattern)
	}
	list := errtrack.IssueList{Issues: []errtrack.Issue{}}
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, db.dialect.q(`SELECT COUNT(*) FROM issues`+w.String()), w.args...).Scan(&list.Total); err != nil {
			return err
		}
		var err error
		list.Issues, err = queryAll(ctx, tx, func(r rowScanner) (errtrack.Issue, error) {
			row, err := scanIssueRow(r)
			return row.issue, err
		}, db.dialect.q(`SELECT `+issueColumns+` FROM issues`+w.String()+` ORDER BY `+order+` LIMIT ? OFFSET ?`),
			append(w.args, limit, q.Offset)...)
		return err
	})
	if err != nil {
		return errtrack.IssueList{}, fmt.Errorf("find issues: %w", err)
	}
	return list, nil
}

// IssueEvents returns an issue's newest events first (by arrival), at most limit, which
// must be 1 to 100.
func (db *DB) IssueEvents(ctx context.Context, issueID int64, limit int) ([]errtrack.StoredEvent, error) {
	if limit < 1 || limit > maxIssueEvents {
		return nil, fmt.Errorf("events of issue %d: %w: limit %d, want 1 to %d", issueID, errtrack.ErrInvalid, limit, maxIssueEvents)
	}
	var events []errtrack.StoredEvent
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		if err := db.issueExists(ctx, tx, issueID); err != nil {
			return err
		}
		var err error
		events, err = queryAll(ctx, tx, scanStoredEvent, db.dialect.q(`SELECT `+errorEventColumns+` FROM error_events
			WHERE issue_id = ? ORDER BY id DESC LIMIT ?`), issueID, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("events of issue %d: %w", issueID, err)
	}
	return events, nil
}

// GetEvent returns a project's event by the SDK's event ID, or an error wrapping
// errtrack.ErrNotFound.
func (db *DB) GetEvent(ctx context.Context, projectID int64, eventID string) (errtrack.StoredEvent, error) {
	var e errtrack.StoredEvent
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		e, err = scanStoredEvent(tx.QueryRowContext(ctx, db.dialect.q(`SELECT `+errorEventColumns+` FROM error_events
			WHERE project_id = ? AND event_id = ?`), projectID, storedText(eventID)))
		if errors.Is(err, sql.ErrNoRows) {
			return errtrack.ErrNotFound
		}
		return err
	})
	if err != nil {
		return errtrack.StoredEvent{}, fmt.Errorf("get event %q of project %d: %w", eventID, projectID, err)
	}
	return e, nil
}

// IssueReleases returns how many of an issue's events came from each release in each
// environment, in the order the releases were first seen. Events without a release are
// counted in no release.
func (db *DB) IssueReleases(ctx context.Context, issueID int64) ([]errtrack.ReleaseCount, error) {
	var counts []errtrack.ReleaseCount
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		if err := db.issueExists(ctx, tx, issueID); err != nil {
			return err
		}
		var err error
		counts, err = queryAll(ctx, tx, func(r rowScanner) (errtrack.ReleaseCount, error) {
			var c errtrack.ReleaseCount
			err := r.Scan(&c.Release, &c.Environment, &c.Count, instant{&c.FirstSeen}, instant{&c.LastSeen})
			return c, err
		}, db.dialect.q(`SELECT release, environment, count, first_seen, last_seen
			FROM issue_releases WHERE issue_id = ? AND release <> '' ORDER BY first_seen, release, environment`), issueID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("releases of issue %d: %w", issueID, err)
	}
	return counts, nil
}

// IssueHours returns the hourly counts of an issue from the hour since falls in, oldest
// first. Hours without events are left out.
func (db *DB) IssueHours(ctx context.Context, issueID int64, since time.Time) ([]errtrack.HourCount, error) {
	var hours []errtrack.HourCount
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		if err := db.issueExists(ctx, tx, issueID); err != nil {
			return err
		}
		var err error
		hours, err = queryAll(ctx, tx, func(r rowScanner) (errtrack.HourCount, error) {
			var h errtrack.HourCount
			err := r.Scan(instant{&h.Hour}, &h.Count)
			return h, err
		}, db.dialect.q(`SELECT hour, count FROM issue_hours
			WHERE issue_id = ? AND hour >= ? ORDER BY hour`), issueID, db.dialect.time(storedTime(since).Truncate(time.Hour)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("hours of issue %d: %w", issueID, err)
	}
	return hours, nil
}

// PurgeEvents deletes the events received before before, and the hourly counts of the hours
// that ended by then; issues keep their counts. It returns how many events it deleted.
func (db *DB) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	before = storedTime(before)
	var n int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.dialect.q(`DELETE FROM error_events WHERE received_at < ?`), db.dialect.time(before))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.dialect.q(`DELETE FROM issue_hours WHERE hour < ?`),
			db.dialect.time(before.Truncate(time.Hour)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge events before %s: %w", before.Format(time.RFC3339), err)
	}
	return n, nil
}

func (db *DB) issueExists(ctx context.Context, tx *sql.Tx, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, db.dialect.q(`SELECT 1 FROM issues WHERE id = ?`), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errtrack.ErrNotFound
	}
	return err
}

// issueRowOf scans the issue a query for one selects, or returns errtrack.ErrNotFound.
func issueRowOf(row *sql.Row) (issueRow, error) {
	r, err := scanIssueRow(row)
	if errors.Is(err, sql.ErrNoRows) {
		return issueRow{}, errtrack.ErrNotFound
	}
	return r, err
}

func scanIssueRow(row rowScanner) (issueRow, error) {
	var (
		r         issueRow
		id, owner int64
		doc       string
	)
	if err := row.Scan(&id, &owner, &doc, nullInstant{&r.windowStart}, &r.windowCount); err != nil {
		return issueRow{}, err
	}
	if err := json.Unmarshal([]byte(doc), &r.issue); err != nil {
		return issueRow{}, fmt.Errorf("issue %d document: %w", id, err)
	}
	// The columns are the truth: a new issue's document is written before its ID exists.
	r.issue.ID, r.issue.ProjectID = id, owner
	return r, nil
}

// issueValues are the columns an issue is written to, in the order of insertIssue's and
// updateIssue's statements, with a new version.
func (db *DB) issueValues(r *issueRow) ([]any, error) {
	doc, err := json.Marshal(r.issue)
	if err != nil {
		return nil, fmt.Errorf("issue document: %w", err)
	}
	r.version = newIssueVersion()
	is := r.issue
	return []any{string(is.Status), storedText(string(is.Level)), storedText(is.Title), storedText(is.Culprit),
		db.dialect.time(storedTime(is.FirstSeen)), db.dialect.time(storedTime(is.LastSeen)), is.Count, is.UsersAffected,
		storedText(is.FirstRelease), storedText(is.LastRelease), storedText(is.ResolvedIn),
		db.dialect.nullTime(r.windowStart), r.windowCount, string(doc), r.version}, nil
}

// insertIssue stores a new issue and sets its ID and version.
func (db *DB) insertIssue(ctx context.Context, tx *sql.Tx, r *issueRow) error {
	values, err := db.issueValues(r)
	if err != nil {
		return err
	}
	if err := db.queryRow(ctx, tx, qInsertIssue, append([]any{r.issue.ProjectID, r.issue.Fingerprint}, values...)...).
		Scan(&r.issue.ID); err != nil {
		return err
	}
	db.issues.put(r.issue.ID, r.version, r.issue)
	return nil
}

// updateIssue stores an issue's new state and sets its version.
func (db *DB) updateIssue(ctx context.Context, tx *sql.Tx, r *issueRow) error {
	values, err := db.issueValues(r)
	if err != nil {
		return err
	}
	res, err := db.exec(ctx, tx, qUpdateIssue, append(values, r.issue.ID)...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(errtrack.ErrNotFound, err)
	}
	db.issues.put(r.issue.ID, r.version, r.issue)
	return nil
}

// issueByFingerprint returns a project's issue of a fingerprint, or errtrack.ErrNotFound,
// in a write transaction. The document is read and decoded only when the issue memo does
// not hold the version stored.
func (db *DB) issueByFingerprint(ctx context.Context, tx *sql.Tx, projectID int64, fingerprint string) (issueRow, error) {
	var (
		r       issueRow
		id      int64
		version int64
	)
	err := db.queryRow(ctx, tx, qIssueHeadByFingerprint, projectID, fingerprint).
		Scan(&id, &version, nullInstant{&r.windowStart}, &r.windowCount)
	if errors.Is(err, sql.ErrNoRows) {
		return issueRow{}, errtrack.ErrNotFound
	}
	if err != nil {
		return issueRow{}, err
	}
	r.version = version
	if is, ok := db.issues.get(id, version); ok {
		r.issue = is
		return r, nil
	}
	var doc string
	if err := db.queryRow(ctx, tx, qIssueDoc, id).Scan(&doc); err != nil {
		return issueRow{}, err
	}
	if err := json.Unmarshal([]byte(doc), &r.issue); err != nil {
		return issueRow{}, fmt.Errorf("issue %d document: %w", id, err)
	}
	r.issue.ID, r.issue.ProjectID = id, projectID
	db.issues.put(id, version, r.issue)
	return r, nil
}

func scanStoredEvent(row rowScanner) (errtrack.StoredEvent, error) {
	var (
		e   errtrack.StoredEvent
		doc []byte
	)
	if err := row.Scan(&e.ID, &e.ProjectID, &e.IssueID, instant{&e.ReceivedAt}, &doc); err != nil {
		return errtrack.StoredEvent{}, err
	}
	doc, err := eventJSON(doc)
	if err == nil {
		err = json.Unmarshal(doc, &e.Event)
	}
	if err != nil {
		return errtrack.StoredEvent{}, fmt.Errorf("event %d document: %w", e.ID, err)
	}
	return e, nil
}

// storedText is s as a text column holds it on both drivers: PostgreSQL refuses NUL
// characters and invalid UTF-8, so both become U+FFFD. Documents keep the original, which
// JSON escapes.
func storedText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// escapeLike escapes LIKE's wildcards and its escape character, '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// placeholders returns n comma-separated placeholders, for an IN list.
func placeholders(n int) string {
	return "?" + strings.Repeat(", ?", n-1)
}
