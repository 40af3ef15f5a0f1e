package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ferrycd/ferry/internal/auth"
)

var _ auth.Store = (*DB)(nil)

const userColumns = `id, name, role, created_at, disabled_at`

// lastSeenResolution is how stale a session's last_seen_at may get: SessionUser writes it at
// most this often per session, so that a busy browser costs one write a minute, not one a
// request.
const lastSeenResolution = time.Minute

// CreateUser stores a new user with the bcrypt hash of its password. Bad input is an error
// wrapping auth.ErrInvalid; a name another user has, auth.ErrConflict.
func (db *DB) CreateUser(ctx context.Context, name string, role auth.Role, hash []byte) (auth.User, error) {
	if err := validateUser(name, role, hash); err != nil {
		return auth.User{}, fmt.Errorf("create user: %w", err)
	}
	u := auth.User{Name: name, Role: role, CreatedAt: storedTime(time.Now())}
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.dialect.q(`INSERT INTO users (name, role, password_hash, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id`),
			name, string(role), hash, db.dialect.time(u.CreatedAt)).Scan(&u.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: another user has the name", auth.ErrConflict)
		}
		return err
	})
	if err != nil {
		return auth.User{}, fmt.Errorf("create user %s: %w", name, err)
	}
	return u, nil
}

// GetUserByName returns the user named name, disabled or not, with its password hash. An
// unknown name is an error wrapping auth.ErrNotFound; one no user could have,
// auth.ErrInvalid.
func (db *DB) GetUserByName(ctx context.Context, name string) (auth.User, error) {
	if err := auth.ValidateName(name); err != nil {
		return auth.User{}, fmt.Errorf("get user: %w", err)
	}
	var (
		u    auth.User
		hash []byte
	)
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, db.dialect.q(`SELECT `+userColumns+`, password_hash FROM users WHERE name = ?`), name),
			&hash)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return auth.User{}, fmt.Errorf("get user %s: %w", name, auth.ErrNotFound)
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("get user %s: %w", name, err)
	}
	u.PasswordHash = hash
	return u, nil
}

// ListUsers returns every user, disabled ones included, oldest first, without password
// hashes.
func (db *DB) ListUsers(ctx context.Context) ([]auth.User, error) {
	var users []auth.User
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		users, err = queryAll(ctx, tx, func(r rowScanner) (auth.User, error) { return scanUser(r) }, `SELECT `+userColumns+` FROM users ORDER BY id`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// SetUserPassword replaces the password hash of the user named name and ends its sessions,
// so that whoever learnt the old password is logged out with it. An unknown name is an error
// wrapping auth.ErrNotFound; bad input, auth.ErrInvalid.
func (db *DB) SetUserPassword(ctx context.Context, name string, hash []byte) error {
	if err := auth.ValidateHash(hash); err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	err := db.updateUser(ctx, name, `password_hash = ?`, []any{hash}, true)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	return nil
}

// SetUserRole changes the role of the user named name; its sessions keep going with the new
// role. An unknown name is an error wrapping auth.ErrNotFound.
func (db *DB) SetUserRole(ctx context.Context, name string, role auth.Role) error {
	if _, err := auth.ParseRole(string(role)); err != nil {
		return fmt.Errorf("set role of %s: %w", name, err)
	}
	if err := db.updateUser(ctx, name, `role = ?`, []any{string(role)}, false); err != nil {
		return fmt.Errorf("set role of %s: %w", name, err)
	}
	return nil
}

// DisableUser disables the user named name and ends its sessions; it can no longer log in.
// Disabling a disabled user changes nothing and is no error. An unknown name is an error
// wrapping auth.ErrNotFound.
func (db *DB) DisableUser(ctx context.Context, name string) error {
	now := db.dialect.time(storedTime(time.Now()))
	// The time of the first disabling stands.
	err := db.updateUser(ctx, name, `disabled_at = COALESCE(disabled_at, ?)`, []any{now}, true)
	if err != nil {
		return fmt.Errorf("disable user %s: %w", name, err)
	}
	return nil
}

// DeleteUser deletes the user named name and, with it, its sessions. An unknown name is an
// error wrapping auth.ErrNotFound.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	if err := auth.ValidateName(name); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.dialect.q(`DELETE FROM users WHERE name = ?`), name)
		if err != nil {
			return err
		}
		return oneRow(res)
	})
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	return nil
}

// updateUser sets columns of the user named name, set being "column = ?, ..." with args,
// and ends its sessions if endSessions is set.
func (db *DB) updateUser(ctx context.Context, name, set string, args []any, endSessions bool) error {
	if err := auth.ValidateName(name); err != nil {
		return err
	}
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, db.dialect.q(`UPDATE users SET `+set+` WHERE name = ? RETURNING id`),
			append(args, name)...).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return auth.ErrNotFound
		}
		if err != nil || !endSessions {
			return err
		}
		_, err = tx.ExecContext(ctx, db.dialect.q(`DELETE FROM sessions WHERE user_id = ?`), id)
		return err
	})
}

// CreateSession stores a session of the user with ID userID, found by tokenHash, the
// SHA-256 of its token, that ends at expires. A user that does not exist or is disabled is
// an error wrapping auth.ErrUnauthorized; bad input, auth.ErrInvalid.
func (db *DB) CreateSession(ctx context.Context, userID int64, tokenHash []byte, expires time.Time) error {
	if len(tokenHash) != sha256.Size {
		return fmt.Errorf("create session: %w: token hash has %d bytes, want a SHA-256", auth.ErrInvalid, len(tokenHash))
	}
	now, expires := storedTime(time.Now()), storedTime(expires)
	if !expires.After(now) {
		return fmt.Errorf("create session: %w: expiry %s is not in the future", auth.ErrInvalid, expires.Format(time.RFC3339))
	}
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		// A user disabled concurrently, after this check, may be left with this session;
		// SessionUser refuses it, since it checks the user on every lookup.
		var disabled *time.Time
		err := tx.QueryRowContext(ctx, db.dialect.q(`SELECT disabled_at FROM users WHERE id = ?`), userID).
			Scan(nullInstant{&disabled})
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: user %d does not exist", auth.ErrUnauthorized, userID)
		}
		if err != nil {
			return err
		}
		if disabled != nil {
			return fmt.Errorf("%w: user %d is disabled", auth.ErrUnauthorized, userID)
		}
		_, err = tx.ExecContext(ctx, db.dialect.q(`INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at)
			VALUES (?, ?, ?, ?, ?)`), tokenHash, userID, db.dialect.time(now), db.dialect.time(expires), db.dialect.time(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionUser returns, without its password hash, the user of the session whose token
// hashes to tokenHash. A session that is unknown, has ended at now, or whose user is
// disabled is an error wrapping auth.ErrUnauthorized that says which.
//
// It records now as the session's last activity when the recorded one is a minute old or
// more, in a second transaction taken only then, as AuthenticateAPIKey does.
func (db *DB) SessionUser(ctx context.Context, tokenHash []byte, now time.Time) (auth.User, error) {
	now = storedTime(now)
	var (
		u                 auth.User
		stored            []byte
		expires, lastSeen time.Time
	)
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, db.dialect.q(`SELECT u.id, u.name, u.role, u.created_at, u.disabled_at,
			s.token_hash, s.expires_at, s.last_seen_at
			FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`), tokenHash),
			&stored, instant{&expires}, instant{&lastSeen})
		return err
	})
	// As with API keys, the index lookup's timing could only reveal parts of a hash, which
	// is no use without the token; the constant-time check guards against loose matching.
	if errors.Is(err, sql.ErrNoRows) || err == nil && subtle.ConstantTimeCompare(stored, tokenHash) != 1 {
		return auth.User{}, fmt.Errorf("session: %w: unknown session", auth.ErrUnauthorized)
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("session: %w", err)
	}
	if !now.Before(expires) {
		return auth.User{}, fmt.Errorf("session: %w: session expired at %s", auth.ErrUnauthorized, expires.Format(time.RFC3339))
	}
	if u.DisabledAt != nil {
		return auth.User{}, fmt.Errorf("session: %w: user %s is disabled", auth.ErrUnauthorized, u.Name)
	}
	stale := now.Add(-lastSeenResolution)
	if lastSeen.After(stale) {
		return u, nil
	}
	err = db.inTx(ctx, true, func(tx *sql.Tx) error {
		// The condition stops concurrent requests from all writing, and a replica with a
		// clock behind from moving the time back.
		_, err := tx.ExecContext(ctx, db.dialect.q(`UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at <= ?`),
			db.dialect.time(now), tokenHash, db.dialect.time(stale))
		return err
	})
	if err != nil {
		return auth.User{}, fmt.Errorf("session: record activity: %w", err)
	}
	return u, nil
}

// DeleteSession ends the session whose token hashes to tokenHash. Ending an unknown or
// ended session is no error.
func (db *DB) DeleteSession(ctx context.Context, tokenHash []byte) error {
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.dialect.q(`DELETE FROM sessions WHERE token_hash = ?`), tokenHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// PurgeSessions deletes the sessions that ended at or before before and returns how many.
// Ended sessions work no more either way; this only reclaims their rows.
func (db *DB) PurgeSessions(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.dialect.q(`DELETE FROM sessions WHERE expires_at <= ?`),
			db.dialect.time(storedTime(before)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", err)
	}
	return n, nil
}

// validateUser reports, wrapped in auth.ErrInvalid, the first rule a new user breaks.
func validateUser(name string, role auth.Role, hash []byte) error {
	if err := auth.ValidateName(name); err != nil {
		return err
	}
	if _, err := auth.ParseRole(string(role)); err != nil {
		return err
	}
	return auth.ValidateHash(hash)
}

// oneRow reports auth.ErrNotFound unless res changed a row.
func oneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// scanUser scans userColumns, then any extra columns into extra.
func scanUser(row rowScanner, extra ...any) (auth.User, error) {
	var (
		u    auth.User
		role string
	)
	dest := append([]any{&u.ID, &u.Name, &role, instant{&u.CreatedAt}, nullInstant{&u.DisabledAt}}, extra...)
	if err := row.Scan(dest...); err != nil {
		return auth.User{}, err
	}
	u.Role = auth.Role(role)
	return u, nil
}
