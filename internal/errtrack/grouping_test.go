package errtrack

import (
	"regexp"
	"strings"
	"testing"
)

func TestNormalizeValue(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"connection refused", "connection refused"},
		{"user 42 not found", "user <num> not found"},
		{"timeout after 1.5s and 500ms", "timeout after <num>s and <num>ms"},
		{"int64 overflow in utf8 v2 parser", "int64 overflow in utf8 v2 parser"},
		{"dial tcp 10.0.0.12:5432: connect: connection refused", "dial tcp <ip>:<num>: connect: connection refused"},
		{"dial tcp [2001:db8::1]:443: i/o timeout", "dial tcp [<ip>]:<num>: i/o timeout"},
		{"listen on [::]:8080", "listen on [::]:<num>"}, // "::" alone is no address worth a placeholder
		{"std::vector::at out of range", "std::vector::at out of range"},
		{"order 3f2a9c1e-7b4d-4c2a-9f1e-0a1b2c3d4e5f missing", "order <uuid> missing"},
		{"ORDER 3F2A9C1E-7B4D-4C2A-9F1E-0A1B2C3D4E5F missing", "ORDER <uuid> missing"},
		{"nil pointer at 0xc000123abc", "nil pointer at <hex>"},
		{"object 5f3e2a1b9c8d7e6f00112233 not found", "object <hex> not found"},
		{"commit deadbeefcafe unknown", "commit deadbeefcafe unknown"},
		{"mail to Ann.Lee+shop@example.co.uk bounced", "mail to <email> bounced"},
		{"user 42@example.com", "user <email>"},
		{"expired at 2026-03-04T05:06:07.123Z", "expired at <date>"},
		{"expired at 2026-03-04 05:06:07+01:00", "expired at <date>"},
		{"on 2026-03-04", "on <date>"},
		{"at 05:06:07", "at <num>:<num>:<num>"},
		{"key 'order_12345' missing", "key 'order_<num>' missing"},
		{`key "user42" missing`, `key "user<num>" missing`},
		{"key `v2` missing", "key `v<num>` missing"},
		{"key order_12345 missing", "key order_12345 missing"},
		{"can't find user42's cart", "can't find user<num>'s cart"},
		{"-17 degrees", "-<num> degrees"},
		{"", ""},
	}
	for _, tt := range tests {
		got := normalizeValue(tt.in)
		if got != tt.want {
			t.Errorf("normalizeValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again := normalizeValue(got); again != got {
			t.Errorf("normalizeValue not idempotent on %q: %q", got, again)
		}
	}
}

func TestCleanFilename(t *testing.T) {
	tests := []struct{ in, want string }{
		{"app/views.py", "app/views.py"},
		{`C:\src\app\Program.cs`, "C:/src/app/Program.cs"},
		{"https://cdn.example.com/static/app.js?v=123#x", "/static/app.js"},
		{"app:///main.js", "/main.js"},
		{"webpack-internal:///./src/cart.ts:12:7", "/./src/cart.ts"},
		{"server.js:10", "server.js"},
		{"https://cdn.example.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := cleanFilename(tt.in); got != tt.want {
			t.Errorf("cleanFilename(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// frame is an in-app frame unless inApp says otherwise.
func frame(module, function string, line int, inApp ...bool) Frame {
	f := Frame{Module: module, Function: function, Lineno: line, InApp: ptr(true)}
	if len(inApp) > 0 {
		f.InApp = ptr(inApp[0])
	}
	return f
}

func exc(typ, value string, frames ...Frame) Exception {
	ex := Exception{Type: typ, Value: value}
	if frames != nil {
		ex.Stacktrace = &Stacktrace{Frames: frames}
	}
	return ex
}

func event(exs ...Exception) Event { return Event{Exception: exs} }

func message(formatted, template string) Event {
	return Event{LogEntry: &LogEntry{Formatted: formatted, Message: template}}
}

func TestFingerprintRules(t *testing.T) {
	lib := func(fn string, line int) Frame { return frame("net/http", fn, line, false) }
	handler := exc("*app.NotFound", "order 7 not found",
		lib("serve", 100), frame("shop/api", "handleCart", 41), frame("shop/store", "loadOrder", 12))

	tests := []struct {
		name     string
		a, b     Event
		same     bool
		wantKind string // of a
	}{
		{
			name:     "line and column numbers do not count",
			a:        event(handler),
			b:        event(exc("*app.NotFound", "order 7 not found", lib("serve", 180), frame("shop/api", "handleCart", 97), Frame{Module: "shop/store", Function: "loadOrder", Lineno: 3, Colno: 9, AbsPath: "/build/x/store.go", InApp: ptr(true)})),
			same:     true,
			wantKind: GroupByStacktrace,
		},
		{
			name:     "values do not count when frames do",
			a:        event(handler),
			b:        event(exc("*app.NotFound", "order 8 vanished", handler.Stacktrace.Frames...)),
			same:     true,
			wantKind: GroupByStacktrace,
		},
		{
			name:     "another in-app function",
			a:        event(handler),
			b:        event(exc("*app.NotFound", "order 7 not found", lib("serve", 100), frame("shop/api", "handleCheckout", 41), frame("shop/store", "loadOrder", 12))),
			wantKind: GroupByStacktrace,
		},
		{
			name:     "another in-app module",
			a:        event(handler),
			b:        event(exc("*app.NotFound", "order 7 not found", lib("serve", 100), frame("shop/admin", "handleCart", 41), frame("shop/store", "loadOrder", 12))),
			wantKind: GroupByStacktrace,
		},
		{
			name:     "another exception type",
			a:        event(handler),
			b:        event(exc("*app.Timeout", "order 7 not found", handler.Stacktrace.Frames...)),
			wantKind: GroupByStacktrace,
		},
		{
			name:     "library frames do not count beside in-app ones",
			a:        event(handler),
			b:        event(exc("*app.NotFound", "x", lib("ServeHTTP", 1), lib("serverHandler", 2), frame("shop/api", "handleCart", 41), frame("shop/store", "loadOrder", 12))),
			same:     true,
			wantKind: GroupByStacktrace,
		},
		{
			name:     "with no frame marked in-app, all count",
			a:        event(exc("E", "", Frame{Module: "a", Function: "f"}, Frame{Module: "b", Function: "g"})),
			b:        event(exc("E", "", Frame{Module: "a", Function: "f"}, Frame{Module: "c", Function: "g"})),
			wantKind: GroupByStacktrace,
		},
		{
			name:     "frames marked not in-app count when none is",
			a:        event(exc("E", "", lib("f", 1), lib("g", 2))),
			b:        event(exc("E", "", lib("f", 1), lib("h", 2))),
			wantKind: GroupByStacktrace,
		},
		{
			name:     "recursion depth does not count",
			a:        event(exc("RecursionError", "", frame("m", "main", 1), frame("m", "walk", 2), frame("m", "walk", 2), frame("m", "walk", 2))),
			b:        event(exc("RecursionError", "", frame("m", "main", 1), frame("m", "walk", 2), frame("m", "walk", 2))),
			same:     true,
			wantKind: GroupByStacktrace,
		},
		{
			name:     "file name without module, minus build hash and query",
			a:        event(exc("TypeError", "x is undefined", Frame{Filename: "https://cdn.example.com/static/app.3f9a2c1b.js?v=1", Function: "render", Lineno: 1, Colno: 2000, InApp: ptr(true)})),
			b:        event(exc("TypeError", "x is undefined", Frame{Filename: "https://cdn2.example.com/static/app.77d0e4aa.js", Function: "render", Lineno: 1, Colno: 3100, InApp: ptr(true)})),
			same:     true,
			wantKind: GroupByStacktrace,
		},
		{
			name: "absolute path's directory does not count",
			a:    event(exc("E", "", Frame{AbsPath: "/home/ci/build-1/app/main.rb", Function: "run"})),
			b:    event(exc("E", "", Frame{AbsPath: "/home/ci/build-2/app/main.rb", Function: "run"})),
			same: true, wantKind: GroupByStacktrace,
		},
		{
			name:     "source line stands in for a missing function",
			a:        event(exc("E", "", Frame{Filename: "a.py", ContextLine: "  x = y[0]  "})),
			b:        event(exc("E", "", Frame{Filename: "a.py", ContextLine: "z = w[0]"})),
			wantKind: GroupByStacktrace,
		},
		{
			name:     "chained exceptions: each type counts",
			a:        event(exc("*app.NotFound", "x"), exc("*fmt.wrapError", "load: x", handler.Stacktrace.Frames...)),
			b:        event(exc("*sql.ErrNoRows", "x"), exc("*fmt.wrapError", "load: x", handler.Stacktrace.Frames...)),
			wantKind: GroupByStacktrace,
		},
		{
			name:     "chained exceptions: in-app frames of any exception count",
			a:        event(exc("A", "", frame("m", "f", 1)), exc("B", "", frame("m", "g", 1))),
			b:        event(exc("A", "", frame("m", "f", 1)), exc("B", "", frame("m", "h", 1))),
			wantKind: GroupByStacktrace,
		},
		{
			name: "the crashed thread stands in for a stackless exception",
			a: Event{Exception: Exceptions{exc("SIGSEGV", "at 0x0")}, Threads: Threads{
				{ID: "1", Stacktrace: &Stacktrace{Frames: []Frame{frame("m", "idle", 1)}}},
				{ID: "2", Crashed: true, Stacktrace: &Stacktrace{Frames: []Frame{frame("m", "parse", 1)}}}}},
			b: Event{Exception: Exceptions{exc("SIGSEGV", "at 0x10")}, Threads: Threads{
				{ID: "9", Crashed: true, Stacktrace: &Stacktrace{Frames: []Frame{frame("m", "parse", 7)}}}}},
			same: true, wantKind: GroupByStacktrace,
		},
		{
			name:     "no frames: type and value, ids normalized",
			a:        event(exc("KeyError", "user 3f2a9c1e-7b4d-4c2a-9f1e-0a1b2c3d4e5f from 10.1.2.3 not found")),
			b:        event(exc("KeyError", "user 0a1b2c3d-7b4d-4c2a-9f1e-3f2a9c1e4e5f from 10.9.8.7 not found")),
			same:     true,
			wantKind: GroupByException,
		},
		{
			name:     "no frames: another value",
			a:        event(exc("KeyError", "'order_1'")),
			b:        event(exc("KeyError", "'cart_1'")),
			wantKind: GroupByException,
		},
		{
			name:     "no frames: digits in quotes",
			a:        event(exc("KeyError", "'order_1'")),
			b:        event(exc("KeyError", "'order_22'")),
			same:     true,
			wantKind: GroupByException,
		},
		{
			name:     "no frames: another type",
			a:        event(exc("KeyError", "x")),
			b:        event(exc("IndexError", "x")),
			wantKind: GroupByException,
		},
		{
			name:     "frames with nothing to group on fall back to the value",
			a:        event(exc("E", "boom 1", Frame{Lineno: 3}, Frame{InstructionAddr: "0x1"})),
			b:        event(exc("E", "boom 2", Frame{Lineno: 9})),
			same:     true,
			wantKind: GroupByException,
		},
		{
			name:     "message: the template wins over the formatted text",
			a:        message("user ann not found", "user %s not found"),
			b:        message("user bob not found", "user %s not found"),
			same:     true,
			wantKind: GroupByMessage,
		},
		{
			name:     "message: formatted text normalized",
			a:        message("cache miss for key 123 on 10.0.0.1", ""),
			b:        message("cache miss for key 77 on 10.0.0.2", ""),
			same:     true,
			wantKind: GroupByMessage,
		},
		{
			name:     "message: another text",
			a:        message("cache miss", ""),
			b:        message("cache full", ""),
			wantKind: GroupByMessage,
		},
		{
			name: "message: a stack trace sent with a message does not count",
			a: Event{LogEntry: &LogEntry{Formatted: "queue full"},
				Threads: Threads{{Current: true, Stacktrace: &Stacktrace{Frames: []Frame{frame("m", "logError", 1), frame("m", "enqueue", 1)}}}}},
			b: Event{LogEntry: &LogEntry{Formatted: "queue full"},
				Threads: Threads{{Current: true, Stacktrace: &Stacktrace{Frames: []Frame{frame("m", "logError", 1), frame("m", "drain", 1)}}}}},
			same: true, wantKind: GroupByMessage,
		},
		{
			name:     "nothing: one fallback group",
			a:        Event{Transaction: "/a"},
			b:        Event{Level: LevelInfo},
			same:     true,
			wantKind: GroupByFallback,
		},
		{
			name:     "client fingerprint replaces the default",
			a:        Event{Exception: Exceptions{handler}, Fingerprint: []string{"database-down"}},
			b:        Event{LogEntry: &LogEntry{Formatted: "x"}, Fingerprint: []string{"database-down"}},
			same:     true,
			wantKind: GroupByFingerprint,
		},
		{
			name:     "client fingerprint: order counts",
			a:        Event{Fingerprint: []string{"a", "b"}},
			b:        Event{Fingerprint: []string{"b", "a"}},
			wantKind: GroupByFingerprint,
		},
		{
			name:     "client fingerprint: elements are not concatenated",
			a:        Event{Fingerprint: []string{"ab", "c"}},
			b:        Event{Fingerprint: []string{"a", "bc"}},
			wantKind: GroupByFingerprint,
		},
		{
			name:     "{{ default }} alone is the default",
			a:        Event{Exception: Exceptions{handler}, Fingerprint: []string{"{{ default }}"}},
			b:        Event{Exception: Exceptions{handler}},
			same:     true,
			wantKind: GroupByStacktrace,
		},
		{
			name:     "{{ default }} spelt without spaces or in capitals",
			a:        Event{Exception: Exceptions{handler}, Fingerprint: []string{"{{default}}", "eu"}},
			b:        Event{Exception: Exceptions{handler}, Fingerprint: []string{" {{ DEFAULT }} ", "eu"}},
			same:     true,
			wantKind: GroupByFingerprint,
		},
		{
			name:     "{{ default }} plus a value splits the default group",
			a:        Event{Exception: Exceptions{handler}, Fingerprint: []string{"{{ default }}", "eu"}},
			b:        Event{Exception: Exceptions{handler}, Fingerprint: []string{"{{ default }}", "us"}},
			wantKind: GroupByFingerprint,
		},
		{
			name:     "{{ default }} plus a value keeps the default's distinctions",
			a:        Event{Exception: Exceptions{handler}, Fingerprint: []string{"{{ default }}", "eu"}},
			b:        Event{Exception: Exceptions{exc("*app.Timeout", "", handler.Stacktrace.Frames...)}, Fingerprint: []string{"{{ default }}", "eu"}},
			wantKind: GroupByFingerprint,
		},
		{
			name:     "{{ default }} is not the literal text",
			a:        Event{Exception: Exceptions{handler}, Fingerprint: []string{"{{ default }}", "eu"}},
			b:        Event{Fingerprint: []string{"{{ default }}", "eu"}},
			wantKind: GroupByFingerprint,
		},
	}
	hexRe := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ha, kind := Fingerprint(tt.a)
			hb, _ := Fingerprint(tt.b)
			if kind != tt.wantKind {
				t.Errorf("grouped by %s, want %s", kind, tt.wantKind)
			}
			if !hexRe.MatchString(ha) {
				t.Errorf("hash %q is not 64 hex digits", ha)
			}
			if again, _ := Fingerprint(tt.a); again != ha {
				t.Error("the hash changed between two calls")
			}
			if (ha == hb) != tt.same {
				t.Errorf("same hash: %v, want %v", ha == hb, tt.same)
			}
		})
	}
}

// TestFingerprintStable pins hashes: a change here changes every issue's identity, so it
// must come with a new groupingVersion and a migration plan, never by accident.
func TestFingerprintStable(t *testing.T) {
	tests := []struct {
		e    Event
		want string
	}{
		{event(exc("E", "v", frame("m", "f", 1))), "2cd0b7385cfd9ad199200c12b89ae2e4a6735c44285a55f311175324b2a657bf"},
		{message("cache miss for key 1", ""), "b24223d77f0b74187ca0c4a677e3bae576b04fbd41647f826d38c83ff0bbaf14"},
		{Event{}, "aebd1683502457a99eb2a978684fe22d6d1a674136e98579fb77253b01c76c2c"},
	}
	for _, tt := range tests {
		if got, kind := Fingerprint(tt.e); got != tt.want {
			t.Errorf("Fingerprint (%s) = %s, want %s", kind, got, tt.want)
		}
	}
}

func TestTitle(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"type and value", event(exc("ValueError", "bad input")), "ValueError: bad input"},
		{"the raised (last) exception of a chain", event(exc("KeyError", "'id'"), exc("*fmt.wrapError", "load: 'id'")), "*fmt.wrapError: load: 'id'"},
		{"first line of the value", event(exc("Error", "\n  first\nsecond")), "Error: first"},
		{"type only", event(exc("SIGSEGV", "")), "SIGSEGV"},
		{"value only", event(exc("", "something broke")), "something broke"},
		{"an empty last exception is skipped", event(exc("E", "v"), exc("", "")), "E: v"},
		{"message, formatted", message("user ann not found", "user %s not found"), "user ann not found"},
		{"message, template only", message("", "user %s not found"), "user %s not found"},
		{"transaction", Event{Transaction: "GET /cart"}, "GET /cart"},
		{"nothing", Event{}, "<unlabeled event>"},
		{"truncated", event(exc("E", strings.Repeat("x", 500))), "E: " + strings.Repeat("x", MaxTitleLength-6) + "..."},
	}
	for _, tt := range tests {
		if got := Title(tt.e); got != tt.want {
			t.Errorf("%s: Title = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCulprit(t *testing.T) {
	goFrame := func(fn string, line int, inApp bool) Frame {
		return Frame{Module: "github.com/acme/shop/api", Function: fn, AbsPath: "/src/shop/api/server.go", Lineno: line, InApp: ptr(inApp)}
	}
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{
			name: "last in-app frame",
			e:    event(exc("E", "", goFrame("main", 1, true), goFrame("handler", 2, true), Frame{Module: "database/sql", Function: "(*DB).Query", InApp: ptr(false)})),
			want: "github.com/acme/shop/api.handler in server.go",
		},
		{
			name: "python",
			e:    event(exc("KeyError", "", Frame{Module: "app.views", Function: "cart", Filename: "app/views.py", InApp: ptr(true)})),
			want: "app.views.cart in views.py",
		},
		{
			name: "function already qualified",
			e:    event(exc("E", "", Frame{Module: "com.acme.Cart", Function: "com.acme.Cart.total", Filename: "Cart.java"})),
			want: "com.acme.Cart.total in Cart.java",
		},
		{
			name: "javascript without module",
			e:    event(exc("TypeError", "", Frame{Filename: "https://shop.example/static/app.js?v=3", Function: "render", InApp: ptr(true)})),
			want: "render in app.js",
		},
		{
			name: "no frame in-app: the last frame",
			e:    event(exc("E", "", Frame{Module: "a", Function: "f"}, Frame{Module: "b", Function: "g"})),
			want: "b.g",
		},
		{
			name: "module only",
			e:    event(exc("E", "", Frame{Module: "a", Function: "?"})),
			want: "a",
		},
		{
			name: "the raised exception's stack",
			e:    event(exc("Cause", "", Frame{Module: "a", Function: "low"}), exc("Wrapper", "", Frame{Module: "a", Function: "high"}), exc("NoStack", "")),
			want: "a.high",
		},
		{
			name: "no frames: the transaction",
			e:    Event{Exception: Exceptions{exc("E", "v")}, Transaction: "GET /cart"},
			want: "GET /cart",
		},
		{
			name: "nothing",
			e:    message("m", ""),
			want: "",
		},
	}
	for _, tt := range tests {
		if got := Culprit(tt.e); got != tt.want {
			t.Errorf("%s: Culprit = %q, want %q", tt.name, got, tt.want)
		}
	}
}
