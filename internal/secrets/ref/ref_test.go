package ref

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// mark is a lookup that stands in for a secret with the reference's own text, in brackets that
// make sure a result cannot be mistaken for a reference.
func mark(r Ref) (string, error) { return "<" + r.String() + ">", nil }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		refs  []Ref
		want  string // Render with mark
	}{
		{"empty", "", nil, ""},
		{"plain", "hello", nil, "hello"},
		{"plain mentions vault", "see vault: docs", nil, "see vault: docs"},
		{"prefix not at start", " vault:secret/db#pw", nil, " vault:secret/db#pw"},
		{"prefix is case-sensitive", "Vault:secret/db#pw", nil, "Vault:secret/db#pw"},
		{"inline prefix is case-sensitive", "${VAULT:secret/db#pw}", nil, "${VAULT:secret/db#pw}"},
		{"shell variables untouched", "echo ${HOME} $${HOME} $$ $", nil, "echo ${HOME} $${HOME} $$ $"},
		{"dollar brace vault with space", "${ vault:a#b}", nil, "${ vault:a#b}"},

		{"whole", "vault:secret/data/db#password",
			[]Ref{{Path: "secret/data/db", Key: "password"}}, "<vault:secret/data/db#password>"},
		{"whole version", "vault:secret/data/db#password#3",
			[]Ref{{Path: "secret/data/db", Key: "password", Version: 3}}, "<vault:secret/data/db#password#3>"},
		{"whole single segment", "vault:db#pw", []Ref{{Path: "db", Key: "pw"}}, "<vault:db#pw>"},
		{"whole kv1", "vault:kv1/app/creds#user", []Ref{{Path: "kv1/app/creds", Key: "user"}}, "<vault:kv1/app/creds#user>"},
		{"whole big version", "vault:a#b#2147483647", []Ref{{Path: "a", Key: "b", Version: 2147483647}}, "<vault:a#b#2147483647>"},
		{"path punctuation", "vault:my-kv/team_a/app.v2/x@y+z=w:1,2~3#k",
			[]Ref{{Path: "my-kv/team_a/app.v2/x@y+z=w:1,2~3", Key: "k"}}, "<vault:my-kv/team_a/app.v2/x@y+z=w:1,2~3#k>"},
		{"dots inside a segment", "vault:a/.hidden/b..c/...#k", []Ref{{Path: "a/.hidden/b..c/...", Key: "k"}}, "<vault:a/.hidden/b..c/...#k>"},
		{"key punctuation", `vault:a#we!rd-key_1.2/3:$x"'\`, []Ref{{Path: "a", Key: `we!rd-key_1.2/3:$x"'\`}}, `<vault:a#we!rd-key_1.2/3:$x"'\>`},
		{"key unicode", "vault:a#pässwort", []Ref{{Path: "a", Key: "pässwort"}}, "<vault:a#pässwort>"},
		{"key replacement character", "vault:a#\uFFFD", []Ref{{Path: "a", Key: "\uFFFD"}}, "<vault:a#\uFFFD>"},
		{"whole value keeps ${ text in no form", "vault:a#b$", []Ref{{Path: "a", Key: "b$"}}, "<vault:a#b$>"},

		{"inline alone", "${vault:secret/db#pw}", []Ref{{Path: "secret/db", Key: "pw"}}, "<vault:secret/db#pw>"},
		{"inline", "postgres://app:${vault:secret/data/db#pw}@db/app",
			[]Ref{{Path: "secret/data/db", Key: "pw"}}, "postgres://app:<vault:secret/data/db#pw>@db/app"},
		{"inline version", "x=${vault:secret/db#pw#12};",
			[]Ref{{Path: "secret/db", Key: "pw", Version: 12}}, "x=<vault:secret/db#pw#12>;"},
		{"inline several", "${vault:kv/app#user}:${vault:kv/app#password#2}@${vault:kv/db#host}",
			[]Ref{{Path: "kv/app", Key: "user"}, {Path: "kv/app", Key: "password", Version: 2}, {Path: "kv/db", Key: "host"}},
			"<vault:kv/app#user>:<vault:kv/app#password#2>@<vault:kv/db#host>"},
		{"inline duplicates kept", "${vault:a#b}${vault:a#b}",
			[]Ref{{Path: "a", Key: "b"}, {Path: "a", Key: "b"}}, "<vault:a#b><vault:a#b>"},
		{"inline among dollars", "$ $$ ${HOME} ${vault:a#b} $", []Ref{{Path: "a", Key: "b"}}, "$ $$ ${HOME} <vault:a#b> $"},
		{"inline after vault: text", "vault ${vault:a#b}", []Ref{{Path: "a", Key: "b"}}, "vault <vault:a#b>"},
		{"inline key with dollar", "${vault:a#$b$}", []Ref{{Path: "a", Key: "$b$"}}, "<vault:a#$b$>"},

		{"escape", "$${vault:secret/db#pw}", nil, "${vault:secret/db#pw}"},
		{"escape unterminated", "say $${vault: and stop", nil, "say ${vault: and stop"},
		{"escape malformed", "$${vault:}", nil, "${vault:}"},
		{"escape with three dollars", "$$${vault:a#b}", nil, "$${vault:a#b}"},
		{"escape then ref", "$${vault:a#b}=${vault:a#b}", []Ref{{Path: "a", Key: "b"}}, "${vault:a#b}=<vault:a#b>"},
		{"ref then escape", "${vault:a#b}$${vault:a#b}", []Ref{{Path: "a", Key: "b"}}, "<vault:a#b>${vault:a#b}"},
		{"escape of other text is none", "$${vault_addr}", nil, "$${vault_addr}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := Contains(tc.value), tc.refs != nil || strings.Contains(tc.value, "$${vault:"); got != want {
				t.Errorf("Contains(%q) = %v, want %v", tc.value, got, want)
			}
			tmpl, err := Parse(tc.value)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.value, err)
			}
			if diff := cmp.Diff(tc.refs, tmpl.Refs()); diff != "" {
				t.Errorf("Parse(%q).Refs() (-want +got):\n%s", tc.value, diff)
			}
			if tmpl.HasRefs() != (len(tc.refs) > 0) {
				t.Errorf("HasRefs() = %v with %d references", tmpl.HasRefs(), len(tc.refs))
			}
			got, err := tmpl.Render(mark)
			if err != nil || got != tc.want {
				t.Errorf("Render() = %q, %v; want %q", got, err, tc.want)
			}
			for _, r := range tc.refs {
				roundTrip(t, r)
			}
		})
	}
}

// roundTrip checks that both forms of r's canonical text parse back to r.
func roundTrip(t *testing.T, r Ref) {
	t.Helper()
	for _, s := range []string{r.String(), "${" + r.String() + "}"} {
		tmpl, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q) of the canonical form of %+v: %v", s, r, err)
			continue
		}
		if got := tmpl.Refs(); len(got) != 1 || got[0] != r {
			t.Errorf("Parse(%q).Refs() = %+v, want [%+v]", s, got, r)
		}
		if v, err := tmpl.Render(mark); err != nil || v != "<"+r.String()+">" {
			t.Errorf("Parse(%q).Render() = %q, %v", s, v, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("a", 200)
	for _, tc := range []struct {
		name   string
		value  string
		ref    string // Error.Ref
		offset int
		reason string // in Error.Reason
	}{
		{"bare prefix", "vault:", "vault:", 0, "empty reference"},
		{"no key", "vault:secret/db", "vault:secret/db", 0, `missing "#KEY"`},
		{"empty path", "vault:#pw", "vault:#pw", 0, "empty path"},
		{"empty key", "vault:secret/db#", "vault:secret/db#", 0, "empty key"},
		{"empty key with version", "vault:secret/db##1", "vault:secret/db##1", 0, "empty key"},
		{"empty version", "vault:secret/db#pw#", "vault:secret/db#pw#", 0, "empty version"},
		{"zero version", "vault:secret/db#pw#0", "vault:secret/db#pw#0", 0, `version "0" is not a positive`},
		{"negative version", "vault:secret/db#pw#-1", "vault:secret/db#pw#-1", 0, `version "-1"`},
		{"plus version", "vault:secret/db#pw#+1", "vault:secret/db#pw#+1", 0, `version "+1"`},
		{"leading zero version", "vault:secret/db#pw#01", "vault:secret/db#pw#01", 0, `version "01"`},
		{"word version", "vault:secret/db#pw#latest", "vault:secret/db#pw#latest", 0, `version "latest"`},
		{"huge version", "vault:a#b#99999999999999999999", "vault:a#b#99999999999999999999", 0, `version "99999999999999999999"`},
		{"too many hashes", "vault:a#b#1#2", "vault:a#b#1#2", 0, `too many "#"`},
		{"leading slash", "vault:/secret/db#pw", "vault:/secret/db#pw", 0, `path starts with "/"`},
		{"trailing slash", "vault:secret/db/#pw", "vault:secret/db/#pw", 0, `path ends with "/"`},
		{"empty segment", "vault:secret//db#pw", "vault:secret//db#pw", 0, "empty segment"},
		{"dot segment", "vault:secret/./db#pw", "vault:secret/./db#pw", 0, `"." segment`},
		{"dotdot segment", "vault:secret/../db#pw", "vault:secret/../db#pw", 0, `".." segment`},
		{"only dotdot", "vault:..#pw", "vault:..#pw", 0, `".." segment`},
		{"space in path", "vault:secret/my db#pw", "vault:secret/my db#pw", 0, `path contains " "`},
		{"dollar in path", "vault:se$ret#pw", "vault:se$ret#pw", 0, `path contains "$"`},
		{"brace in path", "vault:se{ret#pw", "vault:se{ret#pw", 0, `path contains "{"`},
		{"question in path", "vault:secret?v=1#pw", "vault:secret?v=1#pw", 0, `path contains "?"`},
		{"unicode in path", "vault:sécret#pw", "vault:sécret#pw", 0, `path contains "é"`},
		{"invalid utf8 in path", "vault:s\xffx#pw", "vault:s\xffx#pw", 0, `path contains "\xff"`},
		{"control in path", "vault:s\x00#pw", "vault:s\x00#pw", 0, `path contains "\x00"`},
		{"trailing newline", "vault:secret/db#pw\n", "vault:secret/db#pw\n", 0, `key contains "\n"`},
		{"space in key", "vault:secret/db#my pw", "vault:secret/db#my pw", 0, `key contains " "`},
		{"tab in key", "vault:secret/db#my\tpw", "vault:secret/db#my\tpw", 0, `key contains "\t"`},
		{"nbsp in key", "vault:secret/db#my\u00a0pw", "vault:secret/db#my\u00a0pw", 0, `key contains "\u00a0"`},
		{"bidi override in key", "vault:a#x\u202ey", "vault:a#x\u202ey", 0, `key contains "\u202e"`},
		{"invalid utf8 in key", "vault:a#x\xc3", "vault:a#x\xc3", 0, `key contains "\xc3"`},
		{"close brace in key", "vault:a#b}", "vault:a#b}", 0, `key contains "}"`},
		{"whole with inline", "vault:a#b${vault:c#d}", "vault:a#b${vault:c#d}", 0, `key contains "{"`},
		{"whole plain text", "vault: see the docs", "vault: see the docs", 0, `missing "#KEY"`},
		{"whole plain text with hash", "vault: see #docs", "vault: see #docs", 0, `path contains " "`},

		{"inline unterminated", "x ${vault:secret/db#pw", "${vault:secret/db#pw", 2, `missing the closing "}"`},
		{"inline unterminated empty", "${vault:", "${vault:", 0, `missing the closing "}"`},
		{"inline empty", "a${vault:}b", "${vault:}", 1, "empty reference"},
		{"inline no key", "a${vault:secret/db}b", "${vault:secret/db}", 1, `missing "#KEY"`},
		{"inline empty key", "a${vault:secret/db#}b", "${vault:secret/db#}", 1, "empty key"},
		{"inline bad version", "a${vault:db#pw#v2}", "${vault:db#pw#v2}", 1, `version "v2"`},
		{"inline too many hashes", "${vault:db#pw#2#3}", "${vault:db#pw#2#3}", 0, `too many "#"`},
		{"inline bad path", "${vault:/db#pw}", "${vault:/db#pw}", 0, `path starts with "/"`},
		{"inline space stops", "pw=${vault:db#my pw} and more}", "${vault:db#my", 3, `unexpected " " before the closing "}"`},
		{"inline newline stops", "${vault:db#pw\n}", "${vault:db#pw", 0, `unexpected "\n"`},
		{"inline nested", "${vault:a#${vault:b#c}}", "${vault:a#$", 0, `unexpected "{"`},
		{"inline invalid utf8", "${vault:a#\xff}", "${vault:a#", 0, `unexpected "\xff"`},
		{"inline second bad", "${vault:a#b}${vault:c}", "${vault:c}", 12, `missing "#KEY"`},
		{"inline after escape bad", "$${vault:x} ${vault:}", "${vault:}", 12, "empty reference"},
		{"inline long", "${vault:" + long + "#k", "${vault:" + long[:92] + "...", 0, `missing the closing "}"`},
		{"whole long", "vault:" + long, "vault:" + long[:94] + "...", 0, `missing "#KEY"`},
		{"long cut on a rune", "vault:" + strings.Repeat("é", 100) + "#k", "vault:" + strings.Repeat("é", 47) + "...", 0, `path contains "é"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !Contains(tc.value) {
				t.Errorf("Contains(%q) = false for a value Parse refuses", tc.value)
			}
			tmpl, err := Parse(tc.value)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tc.value, tmpl.Refs())
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("errors.Is(%v, ErrMalformed) = false", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error %T, want *Error", tc.value, err)
			}
			if e.Ref != tc.ref || e.Offset != tc.offset || !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("Parse(%q) = %#v, want Ref %q, Offset %d, Reason containing %q", tc.value, e, tc.ref, tc.offset, tc.reason)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", tc.ref)) {
				t.Errorf("error %q does not quote the reference %q", msg, tc.ref)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		value, want string
	}{
		{"vault:secret/db", `vault reference "vault:secret/db": missing "#KEY"`},
		{"vault:secret/db#pw\n", `vault reference "vault:secret/db#pw\n": key contains "\n"`},
		{"url=${vault:secret/db} ", `vault reference "${vault:secret/db}" at byte 4: missing "#KEY"`},
		{"${vault:" + strings.Repeat("ab", MaxValueLen/2), fmt.Sprintf(
			"vault references: the value is %d bytes, more than the %d allowed for a value with references",
			MaxValueLen+8, MaxValueLen)},
	} {
		_, err := Parse(tc.value)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%.40q) error\n%v\nwant\n%s", tc.value, err, tc.want)
		}
	}
}

func TestLimits(t *testing.T) {
	// A long value with no reference is plain text, as Contains promises.
	plain := strings.Repeat("$", MaxValueLen+1)
	if tmpl, err := Parse(plain); err != nil || tmpl.HasRefs() {
		t.Errorf("Parse() of a long plain value: %v", err)
	} else if got, _ := tmpl.Render(nil); got != plain {
		t.Errorf("Render() changed a long plain value")
	}

	// One with a reference may be MaxValueLen bytes but not more.
	ref := "${vault:a#b}"
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{ref + strings.Repeat("x", MaxValueLen-len(ref)), true},
		{ref + strings.Repeat("x", MaxValueLen-len(ref)+1), false},
		{"vault:a#" + strings.Repeat("k", MaxValueLen-8), true},
		{"vault:a#" + strings.Repeat("k", MaxValueLen-7), false},
		{strings.Repeat(ref, MaxRefs), true},
		{strings.Repeat(ref, MaxRefs) + "$${vault:", true},
		{strings.Repeat(ref, MaxRefs+1), false},
	} {
		tmpl, err := Parse(tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("Parse() of %d bytes, %d references: %v, want ok %v", len(tc.value), len(tmpl.Refs()), err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("error %v is not ErrMalformed", err)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("error message of %d bytes", len(err.Error()))
		}
	}
	_, err := Parse(strings.Repeat(ref, MaxRefs+1))
	want := fmt.Sprintf(`vault reference "${vault:a#b}" at byte %d: more than %d references in one value`, MaxRefs*len(ref), MaxRefs)
	if err == nil || err.Error() != want {
		t.Errorf("Parse() of %d references: %v, want %s", MaxRefs+1, err, want)
	}
}

func TestRender(t *testing.T) {
	tmpl, err := Parse("u=${vault:kv/app#user} p=${vault:kv/app#pw#2} u=${vault:kv/app#user}")
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[Ref]string{
		{Path: "kv/app", Key: "user"}:           "admin",
		{Path: "kv/app", Key: "pw", Version: 2}: "${vault:not/a#ref} $${vault:",
	}
	var calls []Ref
	got, err := tmpl.Render(func(r Ref) (string, error) {
		calls = append(calls, r)
		return secrets[r], nil
	})
	if want := "u=admin p=${vault:not/a#ref} $${vault: u=admin"; err != nil || got != want {
		t.Errorf("Render() = %q, %v; want %q (values are not parsed again)", got, err, want)
	}
	if diff := cmp.Diff(tmpl.Refs(), calls); diff != "" {
		t.Errorf("lookup calls (-want +got):\n%s", diff)
	}

	errNotFound := errors.New("no such key")
	calls = nil
	_, err = tmpl.Render(func(r Ref) (string, error) {
		calls = append(calls, r)
		if r.Key == "pw" {
			return "", errNotFound
		}
		return "admin", nil
	})
	if !errors.Is(err, errNotFound) || errors.Is(err, ErrMalformed) {
		t.Errorf("Render() error %v, want one wrapping the lookup's and not ErrMalformed", err)
	}
	if want := `vault reference "vault:kv/app#pw#2": no such key`; err == nil || err.Error() != want {
		t.Errorf("Render() error %v, want %s", err, want)
	}
	if len(calls) != 2 {
		t.Errorf("Render() went on to call lookup %d times after an error, want 2 calls", len(calls))
	}

	// Changing what Refs returns changes nothing in the Template.
	refs := tmpl.Refs()
	refs[0].Key = "changed"
	if tmpl.Refs()[0].Key != "user" {
		t.Error("Refs() returns the Template's own slice")
	}

	var zero Template
	if got, err := zero.Render(nil); got != "" || err != nil || zero.HasRefs() || zero.Refs() != nil {
		t.Errorf("zero Template: Render() = %q, %v; HasRefs() = %v; Refs() = %v", got, err, zero.HasRefs(), zero.Refs())
	}
}

func TestRefString(t *testing.T) {
	for _, tc := range []struct {
		ref  Ref
		want string
	}{
		{Ref{Path: "secret/db", Key: "pw"}, "vault:secret/db#pw"},
		{Ref{Path: "secret/db", Key: "pw", Version: 7}, "vault:secret/db#pw#7"},
		{Ref{Path: "secret/db", Key: "pw", Version: -1}, "vault:secret/db#pw"},
	} {
		if got := tc.ref.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

func TestPaths(t *testing.T) {
	refs := []Ref{
		{Path: "kv/b", Key: "x"},
		{Path: "kv/a", Key: "y", Version: 2},
		{Path: "kv/b", Key: "z"},
		{Path: "kv/a", Key: "y"},
		{Path: "kv/c", Key: "x"},
	}
	if diff := cmp.Diff([]string{"kv/b", "kv/a", "kv/c"}, Paths(refs)); diff != "" {
		t.Errorf("Paths() (-want +got):\n%s", diff)
	}
	if got := Paths(nil); got != nil {
		t.Errorf("Paths(nil) = %v", got)
	}
}

// source writes a Template back as a value that Parse reads as the same Template, in the
// inline form.
func source(tmpl Template) string {
	var b strings.Builder
	esc := strings.NewReplacer(open, "$"+open)
	for i, r := range tmpl.refs {
		b.WriteString(esc.Replace(tmpl.lits[i]))
		b.WriteString("${" + r.String() + "}")
	}
	if len(tmpl.lits) > 0 {
		b.WriteString(esc.Replace(tmpl.lits[len(tmpl.lits)-1]))
	}
	return b.String()
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"plain text",
		"see vault: docs",
		"vault:secret/data/db#password",
		"vault:secret/data/db#password#3",
		"vault:kv1/app/creds#user",
		"vault:secret/db",
		"vault:/secret//../db/#k#0",
		"vault:a#b#1#2",
		"vault:a#b\n",
		"postgres://app:${vault:secret/data/db#pw}@db/app",
		"${vault:kv/app#user}:${vault:kv/app#password#2}",
		"$${vault:secret/db#pw} ${HOME} $${HOME}",
		"$$${vault:a#b}",
		"${vault:a#${vault:b#c}}",
		"${vault:secret/db#pw",
		"${vault:}",
		"${vault:a#b c}",
		"${vault:a#\xff}",
		"${vault:a#\u202e}",
		"vault:a#p\u00e4ss",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		tmpl, err := Parse(value)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) error %T %v, want an *Error matching ErrMalformed", value, err, err)
			}
			if !Contains(value) {
				t.Errorf("Parse(%q) failed, but Contains is false", value)
			}
			// The error quotes nothing but a part of the value: the reference, from its start.
			quoted := strings.TrimSuffix(e.Ref, "...")
			if e.Offset < 0 || e.Offset > len(value) || !strings.HasPrefix(value[e.Offset:], quoted) {
				t.Fatalf("Parse(%q) error %#v: Ref is not the value's text at Offset", value, e)
			}
			if e.Ref != "" && !strings.HasPrefix(e.Ref, prefix) && !strings.HasPrefix(e.Ref, open) {
				t.Errorf("Parse(%q) error Ref %q is not a reference", value, e.Ref)
			}
			if len(e.Ref) > maxErrRef+len("...") {
				t.Errorf("Parse(%q) error Ref %q is too long", value, e.Ref)
			}
			if utf8.ValidString(value) && !utf8.ValidString(value[e.Offset+len(quoted):]) {
				t.Errorf("Parse(%q) error Ref %q is cut inside a character", value, e.Ref)
			}
			return
		}

		refs := tmpl.Refs()
		if Contains(value) != (len(refs) > 0 || strings.Contains(value, "$"+open)) {
			t.Errorf("Contains(%q) = %v with %d references", value, Contains(value), len(refs))
		}
		if tmpl.HasRefs() != (len(refs) > 0) {
			t.Errorf("HasRefs() = %v with %d references", tmpl.HasRefs(), len(refs))
		}
		if len(refs) > MaxRefs {
			t.Errorf("Parse(%q) returned %d references", value, len(refs))
		}

		got, err := tmpl.Render(mark)
		if err != nil {
			t.Fatalf("Render(): %v", err)
		}
		if len(refs) == 0 {
			if want := strings.ReplaceAll(value, "$"+open, open); got != want {
				t.Errorf("Parse(%q).Render() = %q, want %q", value, got, want)
			}
			if !Contains(value) && got != value {
				t.Errorf("Render() changed %q, for which Contains is false", value)
			}
		}
		if strings.HasPrefix(value, prefix) && (len(refs) != 1 || got != "<"+refs[0].String()+">") {
			t.Errorf("Parse(%q) of a whole value gave %d references, Render() = %q", value, len(refs), got)
		}
		for _, r := range refs {
			if r.Path == "" || r.Key == "" || r.Version < 0 {
				t.Errorf("Parse(%q) returned %+v", value, r)
			}
			roundTrip(t, r)
		}

		// The Template written back as a value parses to the same Template.
		src := source(tmpl)
		if len(src) > MaxValueLen {
			return
		}
		again, err := Parse(src)
		if err != nil {
			t.Fatalf("Parse(%q), the source of Parse(%q): %v", src, value, err)
		}
		if diff := cmp.Diff(tmpl, again, cmp.AllowUnexported(Template{})); diff != "" {
			t.Errorf("Parse(%q) and Parse(%q) differ (-first +second):\n%s", value, src, diff)
		}
	})
}
