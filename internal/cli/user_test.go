package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/store"
)

// TestUserCommands creates, lists, changes and removes panel users on a real SQLite store,
// and checks that a generated password is printed once and works.
func TestUserCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append(args, "--store", "sqlite://"+path), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("user", "create", "alice", "--role", "operator")
	pw := strings.TrimSpace(out)
	if code != 0 || len(pw) < 20 || !strings.Contains(errOut, "role operator") {
		t.Fatalf("user create = %d %q %q", code, out, errOut)
	}
	db, err := store.Open(t.Context(), "sqlite://"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.GetUserByName(t.Context(), "alice")
	if err != nil || u.Role != auth.RoleOperator || !auth.CheckPassword(u.PasswordHash, pw) {
		t.Fatalf("alice = %+v, %v; want an operator whose password is the printed one", u, err)
	}
	if code, _, errOut := run("user", "create", "alice"); code != 1 || !strings.Contains(errOut, "alice") {
		t.Errorf("second create of alice = %d %q, want a conflict", code, errOut)
	}
	if code, _, errOut := run("user", "create", "bob", "--role", "root"); code != 1 || !strings.Contains(errOut, "unknown role") {
		t.Errorf("create with a bad role = %d %q", code, errOut)
	}
	if code, out, _ := run("user", "role", "alice", "admin"); code != 0 || !strings.Contains(out, "now admin") {
		t.Errorf("user role = %d %q", code, out)
	}
	code, out, _ = run("user", "passwd", "alice")
	if newPW := strings.TrimSpace(out); code != 0 || newPW == pw {
		t.Errorf("user passwd = %d %q, want a new password", code, out)
	}
	if code, out, _ := run("user", "disable", "alice"); code != 0 || !strings.Contains(out, "disabled") {
		t.Errorf("user disable = %d %q", code, out)
	}
	code, out, _ = run("user", "list")
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "admin") || strings.Contains(out, pw) {
		t.Errorf("user list = %d\n%s", code, out)
	}
	if code, _, _ := run("user", "delete", "alice"); code != 0 {
		t.Errorf("user delete = %d", code)
	}
	if code, _, errOut := run("user", "delete", "alice"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("delete of a deleted user = %d %q", code, errOut)
	}
}
