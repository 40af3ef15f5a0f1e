// Package ref parses the Vault secret references that Ferry resolves in Kubernetes Secret
// manifests and in the environment of `ferry exec`, and substitutes the resolved values.
//
// # References
//
// A reference names one key of one Vault KV secret, optionally at one version:
//
//	vault:PATH#KEY
//	vault:PATH#KEY#VERSION
//
// It can make up a whole value, or appear inline, inside "${" and "}", any number of times in a
// longer value:
//
//	vault:secret/data/db#password            the password, latest version
//	vault:secret/data/db#password#3          version 3 of it (KV version 2 only)
//	postgres://app:${vault:secret/data/db#password}@db:5432/app
//	${vault:kv/app#user}:${vault:kv/app#password#2}
//
// PATH is the secret's path as you would give it to `vault kv get` or the HTTP API: whether
// it spells out the "data/" of a KV version 2 mount or not is for the resolver to sort out, not
// for this package. It is one or more non-empty segments separated by "/", with no "/" at
// either end and no "." or ".." segment, made of the ASCII letters and digits and
// - _ . @ + = : , ~ only.
//
// KEY is a field of the secret's data. It is any non-empty text of printable Unicode
// characters other than space, "#", "{" and "}"; so it contains no whitespace and no control
// character.
//
// VERSION is a positive decimal integer without leading zeros: "#3", not "#0" or "#03".
//
// # Values
//
// A value that starts with "vault:" is a whole-value reference: all of it, to its last byte,
// must be one reference. There is nothing to trim, so a trailing newline (as a YAML "|" block
// adds) is an error, not part of the key.
//
// Any other value is text in which each "${vault:" starts an inline reference that runs to the
// next "}". To write a literal "${vault:", double the dollar: "$${vault:" stands for the text
// "${vault:" and starts no reference. The escape exists only in that spelling: every other
// "$", "$$" or "${", such as the "${HOME}" of a shell snippet, is left as it is, so a value in
// which no "${vault:" appears comes out unchanged. (One consequence: a literal "$" cannot
// directly precede an inline reference, since "$${vault:" is the escape.)
//
// The prefixes are case-sensitive, and nothing is trimmed: "Vault:x#y", " vault:x#y" and
// "see vault: docs" are plain text and contain no reference. That is the only way a value
// resembling a reference passes through unresolved: a value that starts with "vault:", or an
// inline "${vault:", that does not then follow the grammar is an error. So are a value
// containing references that is longer than [MaxValueLen] bytes and a value with more than
// [MaxRefs] references.
//
// # Errors
//
// Parse fails with an [*Error], which matches [ErrMalformed] under [errors.Is]. Its message
// quotes only the reference text as written, shortened if long, and never anything resolved
// from Vault.
package ref

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a value that contains references.
const (
	// MaxValueLen is the longest value, in bytes, Parse accepts when it contains a reference.
	MaxValueLen = 1 << 20
	// MaxRefs is the most references one value may contain.
	MaxRefs = 256
)

const (
	prefix = "vault:"   // starts a whole-value reference
	open   = "${vault:" // starts an inline reference, which "}" ends

	// maxErrRef is how much of a reference an error quotes, in bytes.
	maxErrRef = 100
)

// ErrMalformed matches every error Parse returns.
var ErrMalformed = errors.New("malformed vault reference")

// Error is a value Parse refused.
type Error struct {
	// Ref is the reference as written, from its "vault:" or "${vault:" on: to the end of the
	// value, to its "}", or for an inline reference to just before a character none may
	// contain, which Reason then quotes. It is cut to at most 100 bytes plus "..." if it was
	// longer, and it is empty when the fault lies with the value as a whole.
	Ref string
	// Offset is the byte offset of Ref in the value.
	Offset int
	// Reason says what is wrong.
	Reason string
}

func (e *Error) Error() string {
	if e.Ref == "" {
		return "vault references: " + e.Reason
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vault reference %q", e.Ref)
	if e.Offset > 0 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Is reports whether target is ErrMalformed.
func (e *Error) Is(target error) bool { return target == ErrMalformed }

// refError returns the error for the reference text ref at offset in the value.
func refError(ref string, offset int, reason string) *Error {
	if len(ref) > maxErrRef {
		n := maxErrRef
		for n > 0 && !utf8.RuneStart(ref[n]) {
			n--
		}
		ref = ref[:n] + "..."
	}
	return &Error{Ref: ref, Offset: offset, Reason: reason}
}

// Ref is one reference: the key Key of the secret at Path, at version Version.
type Ref struct {
	Path string
	Key  string
	// Version is the KV version 2 version to read, or 0 for the latest.
	Version int
}

// String returns the reference as a whole value, "vault:PATH#KEY" or "vault:PATH#KEY#VERSION";
// wrapped in "${" and "}" it is the inline form. Parse reads it back as r for every r that
// Parse returned.
func (r Ref) String() string {
	s := prefix + r.Path + "#" + r.Key
	if r.Version > 0 {
		s += "#" + strconv.Itoa(r.Version)
	}
	return s
}

// Template is a parsed value: literal text with references between. The zero Template is the
// empty value.
type Template struct {
	// lits[i] is the text before refs[i]; the last of lits is the text after the last
	// reference. len(lits) == len(refs)+1, except in the zero Template.
	lits []string
	refs []Ref
}

// Contains reports whether value starts with "vault:" or contains "${vault:" (which includes
// the escape "$${vault:"). When it is false, value is plain text: Parse finds no reference in
// it and does not fail, and Render returns it unchanged, so a caller may skip Parse.
func Contains(value string) bool {
	return strings.HasPrefix(value, prefix) || strings.Contains(value, open)
}

// Parse parses value, as a whole-value reference if it starts with "vault:" and as text with
// inline references otherwise.
func Parse(value string) (Template, error) {
	whole := strings.HasPrefix(value, prefix)
	if !whole && !strings.Contains(value, open) {
		return Template{lits: []string{value}}, nil
	}
	if len(value) > MaxValueLen {
		return Template{}, &Error{Reason: fmt.Sprintf(
			"the value is %d bytes, more than the %d allowed for a value with references", len(value), MaxValueLen)}
	}
	if whole {
		r, reason := parseRef(value[len(prefix):])
		if reason != "" {
			return Template{}, refError(value, 0, reason)
		}
		return Template{lits: []string{"", ""}, refs: []Ref{r}}, nil
	}

	var t Template
	var lit strings.Builder
	i := 0 // value[:i] is parsed
	for {
		j := strings.Index(value[i:], open)
		if j < 0 {
			break
		}
		j += i
		if j > i && value[j-1] == '$' {
			// "$${vault:", the escape. The "$" before j cannot end an earlier escape or
			// reference, which end in ":" and "}".
			lit.WriteString(value[i : j-1])
			lit.WriteString(open)
			i = j + len(open)
			continue
		}
		lit.WriteString(value[i:j])

		body := j + len(open)
		end, bad := scanInline(value[body:])
		switch {
		case bad != "":
			return Template{}, refError(value[j:body+end], j,
				fmt.Sprintf("unexpected %q before the closing \"}\"", bad))
		case end < 0:
			return Template{}, refError(value[j:], j, `missing the closing "}"`)
		}
		end += body
		if len(t.refs) == MaxRefs {
			return Template{}, refError(value[j:end+1], j,
				fmt.Sprintf("more than %d references in one value", MaxRefs))
		}
		r, reason := parseRef(value[body:end])
		if reason != "" {
			return Template{}, refError(value[j:end+1], j, reason)
		}
		t.lits = append(t.lits, lit.String())
		t.refs = append(t.refs, r)
		lit.Reset()
		i = end + 1
	}
	lit.WriteString(value[i:])
	t.lits = append(t.lits, lit.String())
	return t, nil
}

// scanInline finds the "}" that ends the inline reference whose body s starts with. It returns
// the index of the "}", or -1 if there is none; or, if a character that no reference may hold
// (whitespace, a control character, "{", invalid UTF-8) comes first, its index and the
// character.
func scanInline(s string) (end int, bad string) {
	for k := 0; k < len(s); {
		c := s[k]
		if c == '}' {
			return k, ""
		}
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f || c == '{' {
				return k, s[k : k+1]
			}
			k++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[k:])
		if r == utf8.RuneError && n == 1 {
			return k, s[k : k+1]
		}
		if !unicode.IsPrint(r) {
			return k, s[k : k+n]
		}
		k += n
	}
	return -1, ""
}

// parseRef parses the PATH#KEY[#VERSION] after "vault:". It returns the reason it fails, or "".
func parseRef(s string) (Ref, string) {
	path, rest, ok := strings.Cut(s, "#")
	if !ok {
		if s == "" {
			return Ref{}, `empty reference, want PATH#KEY`
		}
		return Ref{}, `missing "#KEY"`
	}
	if reason := checkPath(path); reason != "" {
		return Ref{}, reason
	}
	key, version, hasVersion := strings.Cut(rest, "#")
	if reason := checkKey(key); reason != "" {
		return Ref{}, reason
	}
	r := Ref{Path: path, Key: key}
	if hasVersion {
		if strings.Contains(version, "#") {
			return Ref{}, `too many "#", want PATH#KEY or PATH#KEY#VERSION`
		}
		v, reason := parseVersion(version)
		if reason != "" {
			return Ref{}, reason
		}
		r.Version = v
	}
	return r, ""
}

// pathChar reports whether c may appear in a PATH.
func pathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("/-_.@+=:,~", c) >= 0
}

func checkPath(path string) string {
	if path == "" {
		return "empty path"
	}
	for k := 0; k < len(path); k++ {
		if !pathChar(path[k]) {
			return fmt.Sprintf("path contains %q", badChar(path[k:]))
		}
	}
	if path[0] == '/' {
		return `path starts with "/"`
	}
	if path[len(path)-1] == '/' {
		return `path ends with "/"`
	}
	for seg := range strings.SplitSeq(path, "/") {
		switch seg {
		case "":
			return "path has an empty segment"
		case ".", "..":
			return fmt.Sprintf("path has a %q segment", seg)
		}
	}
	return ""
}

func checkKey(key string) string {
	if key == "" {
		return "empty key"
	}
	for k, r := range key {
		if r == ' ' || r == '{' || r == '}' || !unicode.IsPrint(r) ||
			(r == utf8.RuneError && !strings.HasPrefix(key[k:], "\uFFFD")) {
			return fmt.Sprintf("key contains %q", badChar(key[k:]))
		}
	}
	return ""
}

// badChar returns the character s starts with, or its first byte if it is not valid UTF-8.
func badChar(s string) string {
	_, n := utf8.DecodeRuneInString(s)
	return s[:n]
}

func parseVersion(s string) (int, string) {
	if s == "" {
		return 0, `empty version after "#"`
	}
	ok := s[0] != '0'
	for k := 0; ok && k < len(s); k++ {
		ok = '0' <= s[k] && s[k] <= '9'
	}
	v, err := strconv.Atoi(s)
	if !ok || err != nil || v <= 0 {
		return 0, fmt.Sprintf("version %q is not a positive decimal integer without leading zeros", s)
	}
	return v, ""
}

// Refs returns the references in the order they appear in the value, one for each
// appearance: a reference written twice is there twice. [Paths] lists the secrets to read.
func (t Template) Refs() []Ref { return slices.Clone(t.refs) }

// HasRefs reports whether the value contains a reference.
func (t Template) HasRefs() bool { return len(t.refs) > 0 }

// Render returns the value with each reference replaced by what lookup returns for it and
// each "$${vault:" by "${vault:". It calls lookup once for each appearance of a reference, in
// order, and stops at the first error, which it returns wrapped in one that names the
// reference. lookup may be nil when the value has no references.
func (t Template) Render(lookup func(Ref) (string, error)) (string, error) {
	if len(t.refs) == 0 {
		if len(t.lits) == 0 {
			return "", nil
		}
		return t.lits[0], nil
	}
	vals := make([]string, len(t.refs))
	n := 0
	for i, r := range t.refs {
		v, err := lookup(r)
		if err != nil {
			return "", fmt.Errorf("vault reference %q: %w", r.String(), err)
		}
		vals[i] = v
		n += len(v) + len(t.lits[i])
	}
	var b strings.Builder
	b.Grow(n + len(t.lits[len(t.refs)]))
	for i, v := range vals {
		b.WriteString(t.lits[i])
		b.WriteString(v)
	}
	b.WriteString(t.lits[len(t.refs)])
	return b.String(), nil
}

// Paths returns the distinct paths of refs, in the order they first appear: the secrets a
// resolver reads, each once.
func Paths(refs []Ref) []string {
	var paths []string
	seen := make(map[string]bool, len(refs))
	for _, r := range refs {
		if !seen[r.Path] {
			seen[r.Path] = true
			paths = append(paths, r.Path)
		}
	}
	return paths
}
