package errtrack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/release"
)

// ErrNotFound reports a project, key, issue or event that does not exist.
var ErrNotFound = errors.New("not found")

// ErrUnauthorized reports a DSN key that is unknown, revoked, or not the project's.
var ErrUnauthorized = errors.New("unauthorized")

// Project is where an application's SDKs send their events, through one of its keys.
type Project struct {
	ID int64 `json:"id"`
	// Name is unique: lowercase letters, digits and '-', 1 to 63 characters, starting
	// with a letter or digit (a DNS label, like an Application's name).
	Name string `json:"name"`
	// RateLimit is the events per minute the project accepts; zero means the server's
	// default.
	RateLimit int       `json:"rateLimit,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

var projectName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate reports a project the store must refuse, wrapping ErrInvalid.
func (p Project) Validate() error {
	if !projectName.MatchString(p.Name) {
		return fmt.Errorf("%w: project name %q: want 1 to 63 lowercase letters, digits or '-', starting with a letter or digit",
			ErrInvalid, p.Name)
	}
	if p.RateLimit < 0 {
		return fmt.Errorf("%w: project %s: rate limit %d is negative", ErrInvalid, p.Name, p.RateLimit)
	}
	return nil
}

// ProjectKey is a project's DSN key. Its Public part is all an SDK sends; like Sentry's,
// it is not a secret to the browser that holds it, but it is what lets events in, so it can
// be rotated (a new key beside the old one) and revoked.
type ProjectKey struct {
	ID        int64      `json:"id"`
	ProjectID int64      `json:"projectId"`
	Public    string     `json:"public"` // 32 lowercase hex digits
	Label     string     `json:"label,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// DSN returns the key's DSN for a server at base (scheme, host and optional path prefix):
// SCHEME://PUBLIC@HOST[/PREFIX]/PROJECT_ID.
func (k ProjectKey) DSN(base *url.URL) string {
	u := url.URL{Scheme: base.Scheme, Host: base.Host, User: url.User(k.Public),
		Path: base.Path + "/" + strconv.FormatInt(k.ProjectID, 10)}
	if base.Path != "" && base.Path[len(base.Path)-1] == '/' {
		u.Path = base.Path + strconv.FormatInt(k.ProjectID, 10)
	}
	return u.String()
}

// Kind says what ingesting one event did to its issue.
type Kind string

// The kinds of an ingest.
const (
	// KindNew: the event opened a new issue.
	KindNew Kind = "new"
	// KindGrouped: the event joined an existing issue and changed nothing about its status.
	KindGrouped Kind = "grouped"
	// KindRegressed: the event reopened a resolved issue (Regressed).
	KindRegressed Kind = "regressed"
	// KindDuplicate: the project already has an event with this event ID, which an SDK
	// resends when it did not see the answer; nothing was stored or counted.
	KindDuplicate Kind = "duplicate"
)

// Outcome is what ingesting one event did.
type Outcome struct {
	// EventID is the ingested event's ID; Hub.Ingest sets it.
	EventID string
	Issue   Issue
	Kind    Kind
	// Previous is the issue as it was before; nil for a new issue.
	Previous *Issue
	// Release is Ferry's release the event's release and environment name (see
	// ParseReleaseName): the latest release of that application in that environment
	// whose revision starts with the SHA. Nil when Ferry deployed no such release.
	Release *release.Release
	// Spike is true for the event that made the issue's count within the spike window
	// reach the threshold (IngestOptions.Spike); once per window.
	Spike bool
}

// Effects are what an ingest or an operator's change causes besides itself, stored in its
// transaction: events on the timeline of the outcome's release (the store sets their
// ReleaseID; none are written without a release) and notifications.
type Effects struct {
	Events        []release.Event
	Notifications []notify.Notification
}

// Spike is the threshold of a spike notification: Count events of one issue within a
// window of Window. Windows are tumbling: one starts with the first event after the last
// one ended, so a burst that straddles two windows may need up to 2*Count-1 events to be
// seen. The zero value detects no spikes.
type Spike struct {
	Count  int64
	Window time.Duration
}

// IngestOptions tune how the store ingests one event.
type IngestOptions struct {
	// Now is when the event arrived; zero means time.Now. An event without a timestamp
	// happened now.
	Now   time.Time
	Spike Spike
	// Effects returns what the outcome causes; nil causes nothing. It is not called for
	// KindDuplicate.
	Effects func(Outcome) Effects
}

// StoredEvent is one event as the store keeps it.
type StoredEvent struct {
	// ID is the store's; Event.EventID is the SDK's.
	ID         int64     `json:"id"`
	ProjectID  int64     `json:"projectId"`
	IssueID    int64     `json:"issueId"`
	ReceivedAt time.Time `json:"receivedAt"`
	Event      Event     `json:"event"`
}

// IssueSort is the order of an issue list, newest or largest first.
type IssueSort string

// The orders of FindIssues.
const (
	SortLastSeen  IssueSort = "last_seen" // the default
	SortFirstSeen IssueSort = "first_seen"
	SortCount     IssueSort = "count"
)

// IssueQuery selects issues. Empty fields select everything.
type IssueQuery struct {
	ProjectID   int64
	Environment string
	// Release selects the issues that had an event in this release.
	Release string
	Status  []Status
	Level   []Level
	// Text matches title or culprit, case-insensitively, as a substring.
	Text   string
	Sort   IssueSort
	Limit  int // 1 to 1000; zero means 50
	Offset int
}

// IssueList is one page of the issues a query selects, with how many it selects in all.
type IssueList struct {
	Issues []Issue `json:"issues"`
	Total  int     `json:"total"`
}

// ReleaseCount is how many events of an issue came from one release in one environment.
type ReleaseCount struct {
	Release     string    `json:"release"`
	Environment string    `json:"environment"`
	Count       int64     `json:"count"`
	FirstSeen   time.Time `json:"firstSeen"`
	LastSeen    time.Time `json:"lastSeen"`
}

// HourCount is how many events of an issue arrived in the hour starting at Hour (UTC).
type HourCount struct {
	Hour  time.Time `json:"hour"`
	Count int64     `json:"count"`
}

// Store is what the error tracker needs from Ferry's store. *store.DB is one.
type Store interface {
	CreateProject(ctx context.Context, p Project) (Project, ProjectKey, error)
	ListProjects(ctx context.Context) ([]Project, error)
	// GetProject takes an ID or a name.
	GetProject(ctx context.Context, ref string) (Project, error)
	SetProjectRateLimit(ctx context.Context, projectID int64, perMinute int) (Project, error)
	ProjectKeys(ctx context.Context, projectID int64) ([]ProjectKey, error)
	CreateProjectKey(ctx context.Context, projectID int64, label string) (ProjectKey, error)
	// RevokeProjectKey takes the key's ID or its public part.
	RevokeProjectKey(ctx context.Context, projectID int64, ref string) (ProjectKey, error)
	// AuthenticateProjectKey returns the project whose live key public is, or an error
	// wrapping ErrNotFound (no such project) or ErrUnauthorized (key unknown, revoked, or
	// another project's).
	AuthenticateProjectKey(ctx context.Context, projectID int64, public string) (Project, error)

	// IngestEvent groups e, normalized, into its project's issue and stores it, with its
	// effects, in one transaction.
	IngestEvent(ctx context.Context, projectID int64, e Event, opts IngestOptions) (Outcome, error)
	GetIssue(ctx context.Context, id int64) (Issue, error)
	FindIssues(ctx context.Context, q IssueQuery) (IssueList, error)
	// UpdateIssue reads an issue, lets change modify it, and stores the result with its
	// effects in one transaction.
	UpdateIssue(ctx context.Context, id int64, change func(Issue) (Issue, error), effects func(Outcome) Effects) (Issue, error)
	// IssueEvents returns an issue's newest events first, at most limit (1 to 100).
	IssueEvents(ctx context.Context, issueID int64, limit int) ([]StoredEvent, error)
	GetEvent(ctx context.Context, projectID int64, eventID string) (StoredEvent, error)
	IssueReleases(ctx context.Context, issueID int64) ([]ReleaseCount, error)
	// IssueHours returns the hourly counts of an issue from since, oldest first.
	IssueHours(ctx context.Context, issueID int64, since time.Time) ([]HourCount, error)
	// PurgeEvents deletes the events received before before, and hourly counts older than
	// it; issues keep their counts. It returns how many events it deleted.
	PurgeEvents(ctx context.Context, before time.Time) (int64, error)
}
