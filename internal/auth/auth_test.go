package auth_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/ferrycd/ferry/internal/auth"
)

func TestRoleAllows(t *testing.T) {
	t.Parallel()
	roles := []auth.Role{auth.RoleViewer, auth.RoleOperator, auth.RoleAdmin}
	for i, have := range roles {
		for j, want := range roles {
			if got := have.Allows(want); got != (i >= j) {
				t.Errorf("%s.Allows(%s) = %v, want %v", have, want, got, i >= j)
			}
		}
		if have.Allows("root") || auth.Role("root").Allows(have) {
			t.Errorf("%s and an unknown role allow each other", have)
		}
	}
}

func TestParseRole(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"viewer", "operator", "admin"} {
		if r, err := auth.ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Admin", "root"} {
		if r, err := auth.ParseRole(s); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("ParseRole(%q) = %q, %v; want ErrInvalid", s, r, err)
		}
	}
}

// password is the password of the tests' users; hashOnce hashes it once for all tests, since
// bcrypt is slow by design.
const password = "correct horse battery"

var hashOnce = sync.OnceValues(func() ([]byte, error) { return auth.HashPassword(password) })

func passwordHash(t *testing.T) []byte {
	t.Helper()
	h, err := hashOnce()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	h := passwordHash(t)
	if !strings.HasPrefix(string(h), "$2a$10$") {
		t.Errorf("hash %q is not bcrypt at the default cost", h)
	}
	if !auth.CheckPassword(h, password) {
		t.Error("CheckPassword(right password) = false")
	}
	for _, pw := range []string{"", "correct horse battery ", "Correct horse battery"} {
		if auth.CheckPassword(h, pw) {
			t.Errorf("CheckPassword(%q) = true", pw)
		}
	}
	if auth.CheckPassword([]byte("not a hash"), password) {
		t.Error("CheckPassword(bad hash) = true")
	}
}

func TestHashPasswordRules(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, pw string
		ok       bool
	}{
		{"empty", "", false},
		{"11 characters", "abcdefghijk", false},
		{"12 characters", "abcdefghijkl", true},
		// Characters, not bytes: 11 two-byte characters are too few.
		{"11 non-ASCII characters", strings.Repeat("é", 11), false},
		{"72 bytes", strings.Repeat("a", 72), true},
		{"73 bytes", strings.Repeat("a", 73), false},
		{"37 two-byte characters", strings.Repeat("é", 37), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := auth.HashPassword(c.pw)
			if c.ok {
				if err != nil || !auth.CheckPassword(h, c.pw) {
					t.Errorf("HashPassword = %q, %v; want a hash that checks", h, err)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalid) {
				t.Errorf("HashPassword = %q, %v; want ErrInvalid", h, err)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"alice", "bob@example.com", "Zoë", strings.Repeat("a", 64)} {
		if err := auth.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "al ice", "tab\t", "nul\x00", "\xff", strings.Repeat("a", 65)} {
		if err := auth.ValidateName(name); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalid", name, err)
		}
	}
}

func TestEnsureAdmin(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	ctx := t.Context()
	created, err := auth.EnsureAdmin(ctx, db, "admin", password)
	if err != nil || !created {
		t.Fatalf("EnsureAdmin on an empty store = %v, %v; want true, nil", created, err)
	}
	u, err := db.GetUserByName(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != auth.RoleAdmin || !auth.CheckPassword(u.PasswordHash, password) {
		t.Errorf("admin = role %s, password checks %v; want admin, true", u.Role, auth.CheckPassword(u.PasswordHash, password))
	}

	// Another configured password leaves the existing user alone.
	created, err = auth.EnsureAdmin(ctx, db, "admin", "another long password")
	if err != nil || created {
		t.Fatalf("EnsureAdmin again = %v, %v; want false, nil", created, err)
	}
	again, err := db.GetUserByName(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if string(again.PasswordHash) != string(u.PasswordHash) {
		t.Error("EnsureAdmin changed the existing admin's password")
	}

	for _, c := range []struct{ name, pw string }{{"admin", "short"}, {"", password}, {"new admin", password}} {
		if _, err := auth.EnsureAdmin(ctx, db, c.name, c.pw); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("EnsureAdmin(%q, %q) = %v, want ErrInvalid", c.name, c.pw, err)
		}
	}
}
