package storetest

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/store"
)

// userCases are the conformance cases of users and sessions.
func (s suite) userCases() []struct {
	name string
	run  func(*testing.T)
} {
	return []struct {
		name string
		run  func(*testing.T)
	}{
		{"UserCreateGetList", s.testUserCreateGetList},
		{"UserCreateInvalid", s.testUserCreateInvalid},
		{"UserGetNotFound", s.testUserGetNotFound},
		{"UserSetRoleAndPassword", s.testUserSetRoleAndPassword},
		{"SessionRoundTrip", s.testSessionRoundTrip},
		{"SessionCreateInvalid", s.testSessionCreateInvalid},
		{"SessionDisabledUser", s.testSessionDisabledUser},
		{"SessionDeletedUser", s.testSessionDeletedUser},
		{"SessionPurge", s.testSessionPurge},
	}
}

// The store treats password hashes as opaque bytes; these stand in for bcrypt hashes.
var (
	hashA = []byte("$2a$10$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	hashB = []byte("$2a$10$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
)

func newUser(t *testing.T, db *store.DB, name string, role auth.Role) auth.User {
	t.Helper()
	u, err := db.CreateUser(t.Context(), name, role, hashA)
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

// newSession creates a session of u that ends at expires and returns its token hash.
func newSession(t *testing.T, db *store.DB, u auth.User, expires time.Time) []byte {
	t.Helper()
	hash := sessionHash()
	if err := db.CreateSession(t.Context(), u.ID, hash, expires); err != nil {
		t.Fatalf("CreateSession(user %d): %v", u.ID, err)
	}
	return hash
}

// sessionHash returns the hash of a new random token.
func sessionHash() []byte {
	sum := sha256.Sum256([]byte(rand.Text()))
	return sum[:]
}

// wantUnauthorized fails the test unless looking up hash at now is refused.
func wantUnauthorized(t *testing.T, db *store.DB, hash []byte, now time.Time, why string) {
	t.Helper()
	if u, err := db.SessionUser(t.Context(), hash, now); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("SessionUser %s = %+v, %v; want ErrUnauthorized", why, u, err)
	}
}

func (s suite) testUserCreateGetList(t *testing.T) {
	db := s.fresh(t)
	before := storedNow()
	a := newUser(t, db, "alice", auth.RoleAdmin)
	b, err := db.CreateUser(t.Context(), "Бob@example.com", auth.RoleViewer, hashB)
	if err != nil {
		t.Fatal(err)
	}
	after := storedNow()
	if a.ID <= 0 || b.ID <= a.ID {
		t.Errorf("IDs %d, %d; want positive and increasing", a.ID, b.ID)
	}
	for _, u := range []auth.User{a, b} {
		if u.CreatedAt.Before(before) || u.CreatedAt.After(after) || u.CreatedAt.Location() != time.UTC {
			t.Errorf("user %d created at %s, want a UTC time between %s and %s", u.ID, u.CreatedAt, before, after)
		}
	}
	want := []auth.User{
		{ID: a.ID, Name: "alice", Role: auth.RoleAdmin, CreatedAt: a.CreatedAt},
		{ID: b.ID, Name: "Бob@example.com", Role: auth.RoleViewer, CreatedAt: b.CreatedAt},
	}
	if diff := cmp.Diff(want, []auth.User{a, b}); diff != "" {
		t.Errorf("CreateUser results (-want +got):\n%s", diff)
	}
	got, err := db.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListUsers (-want +got):\n%s", diff)
	}
	// Only GetUserByName returns the hash, which login needs.
	gotB, err := db.GetUserByName(t.Context(), "Бob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	wantB := want[1]
	wantB.PasswordHash = hashB
	if diff := cmp.Diff(wantB, gotB); diff != "" {
		t.Errorf("GetUserByName (-want +got):\n%s", diff)
	}
}

func (s suite) testUserCreateInvalid(t *testing.T) {
	db := s.fresh(t)
	newUser(t, db, "alice", auth.RoleOperator)
	for _, c := range []struct {
		name, user string
		role       auth.Role
		hash       []byte
		want       error
	}{
		{"no name", "", auth.RoleViewer, hashA, auth.ErrInvalid},
		{"space in name", "al ice", auth.RoleViewer, hashA, auth.ErrInvalid},
		{"NUL in name", "al\x00ice", auth.RoleViewer, hashA, auth.ErrInvalid},
		{"invalid UTF-8", "al\xffice", auth.RoleViewer, hashA, auth.ErrInvalid},
		{"unknown role", "bob", "root", hashA, auth.ErrInvalid},
		{"no hash", "bob", auth.RoleViewer, nil, auth.ErrInvalid},
		{"name taken", "alice", auth.RoleAdmin, hashB, auth.ErrConflict},
	} {
		t.Run(c.name, func(t *testing.T) {
			if u, err := db.CreateUser(t.Context(), c.user, c.role, c.hash); !errors.Is(err, c.want) {
				t.Errorf("CreateUser(%q, %q) = %+v, %v; want %v", c.user, c.role, u, err, c.want)
			}
		})
	}
	// The refused user with the taken name changed nothing.
	got, err := db.GetUserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Role != auth.RoleOperator || string(got.PasswordHash) != string(hashA) {
		t.Errorf("alice after a conflicting create: role %s, hash %q; want operator, %q", got.Role, got.PasswordHash, hashA)
	}
}

func (s suite) testUserGetNotFound(t *testing.T) {
	db := s.fresh(t)
	newUser(t, db, "alice", auth.RoleViewer)
	// Names are matched exactly.
	for _, name := range []string{"bob", "Alice", "alice "} {
		if u, err := db.GetUserByName(t.Context(), name); !errors.Is(err, auth.ErrNotFound) && !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("GetUserByName(%q) = %+v, %v; want ErrNotFound or ErrInvalid", name, u, err)
		}
	}
	if _, err := db.GetUserByName(t.Context(), "bob"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("GetUserByName(bob) = %v, want ErrNotFound", err)
	}
	if _, err := db.GetUserByName(t.Context(), "\xff"); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("GetUserByName(invalid UTF-8) = %v, want ErrInvalid", err)
	}
	for name, err := range map[string]error{
		"SetUserRole":     db.SetUserRole(t.Context(), "bob", auth.RoleAdmin),
		"SetUserPassword": db.SetUserPassword(t.Context(), "bob", hashB),
		"DisableUser":     db.DisableUser(t.Context(), "bob"),
		"DeleteUser":      db.DeleteUser(t.Context(), "bob"),
	} {
		if !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("%s(bob) = %v, want ErrNotFound", name, err)
		}
	}
}

func (s suite) testUserSetRoleAndPassword(t *testing.T) {
	db := s.fresh(t)
	u := newUser(t, db, "alice", auth.RoleViewer)
	now := time.Now()
	hash := newSession(t, db, u, now.Add(time.Hour))

	// A new role applies to the running session.
	if err := db.SetUserRole(t.Context(), "alice", auth.RoleOperator); err != nil {
		t.Fatal(err)
	}
	got, err := db.SessionUser(t.Context(), hash, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Role != auth.RoleOperator {
		t.Errorf("session's role after SetUserRole = %s, want operator", got.Role)
	}
	if err := db.SetUserRole(t.Context(), "alice", "root"); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("SetUserRole(root) = %v, want ErrInvalid", err)
	}

	// A new password ends the sessions.
	if err := db.SetUserPassword(t.Context(), "alice", nil); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("SetUserPassword(no hash) = %v, want ErrInvalid", err)
	}
	if err := db.SetUserPassword(t.Context(), "alice", hashB); err != nil {
		t.Fatal(err)
	}
	wantUnauthorized(t, db, hash, now, "after a password change")
	got, err = db.GetUserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.PasswordHash) != string(hashB) || got.Role != auth.RoleOperator {
		t.Errorf("alice = role %s, hash %q; want operator, %q", got.Role, got.PasswordHash, hashB)
	}
}

func (s suite) testSessionRoundTrip(t *testing.T) {
	db := s.fresh(t)
	u := newUser(t, db, "alice", auth.RoleOperator)
	other := newUser(t, db, "bob", auth.RoleViewer)
	now := time.Now()
	expires := now.Add(time.Hour)
	hash := newSession(t, db, u, expires)
	otherHash := newSession(t, db, other, expires)

	// Looking up twice, a minute apart, also records activity.
	for _, at := range []time.Time{now, now.Add(2 * time.Minute)} {
		got, err := db.SessionUser(t.Context(), hash, at)
		if err != nil {
			t.Fatalf("SessionUser at %s: %v", at, err)
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Errorf("SessionUser (-want +got):\n%s", diff)
		}
	}
	wantUnauthorized(t, db, sessionHash(), now, "of an unknown token")
	wantUnauthorized(t, db, hash, expires, "at its expiry")
	wantUnauthorized(t, db, hash, expires.Add(time.Hour), "after its expiry")

	if err := db.DeleteSession(t.Context(), hash); err != nil {
		t.Fatal(err)
	}
	wantUnauthorized(t, db, hash, now, "after DeleteSession")
	if err := db.DeleteSession(t.Context(), hash); err != nil {
		t.Errorf("DeleteSession of an ended session = %v, want nil", err)
	}
	// The other user's session is untouched.
	if got, err := db.SessionUser(t.Context(), otherHash, now); err != nil || got.ID != other.ID {
		t.Errorf("SessionUser(bob's session) = %+v, %v; want bob", got, err)
	}
}

func (s suite) testSessionCreateInvalid(t *testing.T) {
	db := s.fresh(t)
	u := newUser(t, db, "alice", auth.RoleViewer)
	future := time.Now().Add(time.Hour)
	for _, c := range []struct {
		name    string
		userID  int64
		hash    []byte
		expires time.Time
		want    error
	}{
		{"short hash", u.ID, []byte("short"), future, auth.ErrInvalid},
		{"expired", u.ID, sessionHash(), time.Now().Add(-time.Second), auth.ErrInvalid},
		{"unknown user", u.ID + 100, sessionHash(), future, auth.ErrUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := db.CreateSession(t.Context(), c.userID, c.hash, c.expires); !errors.Is(err, c.want) {
				t.Errorf("CreateSession = %v, want %v", err, c.want)
			}
		})
	}
}

func (s suite) testSessionDisabledUser(t *testing.T) {
	db := s.fresh(t)
	u := newUser(t, db, "alice", auth.RoleAdmin)
	now := time.Now()
	hash := newSession(t, db, u, now.Add(time.Hour))
	before := storedNow()
	if err := db.DisableUser(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	wantUnauthorized(t, db, hash, now, "of a disabled user")
	if err := db.CreateSession(t.Context(), u.ID, sessionHash(), now.Add(time.Hour)); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("CreateSession for a disabled user = %v, want ErrUnauthorized", err)
	}
	got, err := db.GetUserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.DisabledAt == nil || got.DisabledAt.Before(before) {
		t.Fatalf("DisabledAt = %v, want a time after %s", got.DisabledAt, before)
	}
	// Disabling again is no error, and the first time stands.
	if err := db.DisableUser(t.Context(), "alice"); err != nil {
		t.Errorf("DisableUser again = %v, want nil", err)
	}
	again, err := db.GetUserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("user after disabling twice (-want +got):\n%s", diff)
	}
	// Disabling deleted the session rather than hiding it: it purges nothing.
	if n, err := db.PurgeSessions(t.Context(), now.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("PurgeSessions after DisableUser = %d, %v; want 0 sessions left", n, err)
	}
}

func (s suite) testSessionDeletedUser(t *testing.T) {
	db := s.fresh(t)
	u := newUser(t, db, "alice", auth.RoleAdmin)
	keep := newUser(t, db, "bob", auth.RoleAdmin)
	now := time.Now()
	hash := newSession(t, db, u, now.Add(time.Hour))
	newSession(t, db, keep, now.Add(time.Hour))
	if err := db.DeleteUser(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	wantUnauthorized(t, db, hash, now, "of a deleted user")
	if _, err := db.GetUserByName(t.Context(), "alice"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("GetUserByName after DeleteUser = %v, want ErrNotFound", err)
	}
	// Only bob's session is left to purge.
	if n, err := db.PurgeSessions(t.Context(), now.Add(2*time.Hour)); err != nil || n != 1 {
		t.Errorf("PurgeSessions = %d, %v; want 1", n, err)
	}
}

func (s suite) testSessionPurge(t *testing.T) {
	db := s.fresh(t)
	u := newUser(t, db, "alice", auth.RoleViewer)
	now := time.Now()
	early := newSession(t, db, u, now.Add(time.Hour))
	late := newSession(t, db, u, now.Add(3*time.Hour))
	n, err := db.PurgeSessions(t.Context(), now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("PurgeSessions = %d, want 1", n)
	}
	wantUnauthorized(t, db, early, now, "after it was purged")
	if _, err := db.SessionUser(t.Context(), late, now); err != nil {
		t.Errorf("SessionUser of the later session = %v, want it kept", err)
	}
}
