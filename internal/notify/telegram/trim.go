package telegram

import (
	"html"
	"strings"
	"unicode/utf8"
)

// MaxTextLen is the most a message's text may hold, counted as Telegram does: in UTF-16 code
// units of the text left once the HTML is parsed (tags removed, entities decoded).
const MaxTextLen = 4096

// Trim returns s, Telegram HTML, cut so that its visible length (see VisibleLen) with the
// suffix fits limit. The suffix is "…" and, when link is not empty, a line linking it as
// "Full message in Ferry". Trim cuts between characters, never inside a tag or an entity,
// closes the tags left open, drops end tags that close nothing (Telegram rejects those), and
// escapes a < or & that starts no tag or entity.
// It returns s as is when it already fits.
func Trim(s, link string, limit int) string {
	if VisibleLen(s) <= limit {
		return s
	}
	suffix := "…"
	if link != "" {
		suffix = "…\n\n<a href=\"" + html.EscapeString(link) + "\">Full message in Ferry</a>"
	}
	budget := limit - VisibleLen(suffix)
	if budget < 0 {
		suffix, budget = "…", limit-1
	}
	if budget < 0 {
		return ""
	}

	type open struct {
		name string
		// start and end are where the start tag is in out.
		start, end int
	}
	var (
		out   []byte
		stack []open
		used  int
	)
scan:
	for rest := s; rest != ""; {
		tok := next(rest)
		rest = rest[len(tok.raw):]
		switch tok.kind {
		case charToken:
			if used+tok.width > budget {
				break scan
			}
			used += tok.width
			// A < or & that starts no tag or entity is text, but once cut, what
			// follows it here (a closing tag, the suffix) could make it one.
			switch tok.raw {
			case "<":
				out = append(out, "&lt;"...)
			case "&":
				out = append(out, "&amp;"...)
			default:
				out = append(out, tok.raw...)
			}
		case startToken:
			start := len(out)
			out = append(out, tok.raw...)
			stack = append(stack, open{tok.name, start, len(out)})
		case endToken:
			i := len(stack) - 1
			if tok.name != "" { // </> closes the innermost tag
				for i >= 0 && stack[i].name != tok.name {
					i--
				}
			}
			if i < 0 {
				continue // closes nothing
			}
			for j := len(stack) - 1; j > i; j-- { // misnested: close the inner tags first
				out = append(out, "</"+stack[j].name+">"...)
			}
			out = append(out, tok.raw...)
			stack = stack[:i]
		}
	}
	for j := len(stack) - 1; j >= 0; j-- {
		if len(out) == stack[j].end { // nothing after the start tag: drop it
			out = out[:stack[j].start]
			continue
		}
		out = append(out, "</"+stack[j].name+">"...)
	}
	return string(out) + suffix
}

// VisibleLen is the length Telegram gives s, Telegram HTML, for its limits: the UTF-16 code
// units of its text once the tags are removed and the entities decoded. It never counts less
// than Telegram: what Telegram would reject (an unknown entity, a lone <) counts as written.
func VisibleLen(s string) int {
	n := 0
	for rest := s; rest != ""; {
		tok := next(rest)
		rest = rest[len(tok.raw):]
		n += tok.width
	}
	return n
}

type tokenKind int

const (
	// charToken is one character: as is, or an HTML entity.
	charToken tokenKind = iota
	startToken
	endToken
)

// token is one indivisible piece of Telegram HTML.
type token struct {
	kind tokenKind
	raw  string
	// name is a tag's name, lower case; empty for </>.
	name string
	// width is the visible length of a charToken in UTF-16 code units.
	width int
}

// next returns the token s starts with, read as the Bot API's parser (tdlib's parse_html)
// reads it. s must not be empty.
func next(s string) token {
	switch s[0] {
	case '<':
		if t, ok := scanTag(s); ok {
			return t
		}
	case '&':
		if n, r, ok := scanEntity(s); ok {
			return token{kind: charToken, raw: s[:n], width: utf16Len(r)}
		}
	}
	r, n := utf8.DecodeRuneInString(s)
	return token{kind: charToken, raw: s[:n], width: utf16Len(r)}
}

func utf16Len(r rune) int {
	if r >= 0x10000 && r <= utf8.MaxRune {
		return 2
	}
	return 1
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// scanTag reads the tag s starts with: a name runs to a space or >, and a quoted attribute
// value may hold a >. It reports false when s does not start with a complete tag.
func scanTag(s string) (token, bool) {
	i := 1
	end := i < len(s) && s[i] == '/'
	if end {
		i++
	}
	nameStart := i
	for i < len(s) && !isSpace(s[i]) && s[i] != '>' {
		i++
	}
	name := strings.ToLower(s[nameStart:i])
	if end {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) || s[i] != '>' {
			return token{}, false
		}
		return token{kind: endToken, raw: s[:i+1], name: name}, true
	}
	if name == "" {
		return token{}, false
	}
	var quote byte
	afterEquals := false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '>':
			return token{kind: startToken, raw: s[:i+1], name: name}, true
		case (c == '"' || c == '\'') && afterEquals:
			quote = c
		}
		if quote == 0 && !isSpace(c) {
			afterEquals = c == '='
		}
	}
	return token{}, false
}

// scanEntity reads the entity s starts with as the Bot API does: &lt; &gt; &amp; &quot; and
// numeric ones, the semicolon optional. It reports false for anything else, which Telegram
// shows as written.
func scanEntity(s string) (n int, r rune, ok bool) {
	i := 1
	if i < len(s) && s[i] == '#' {
		i++
		base := rune(10)
		if i < len(s) && s[i] == 'x' {
			base = 16
			i++
		}
		for ; i < len(s); i++ {
			d := digit(s[i], base)
			if d < 0 {
				break
			}
			r = r*base + d
			if r >= 0x10ffff {
				return 0, 0, false
			}
		}
		if r == 0 || (r >= 0xd800 && r <= 0xdfff) {
			return 0, 0, false
		}
	} else {
		j := i
		for j < len(s) && (s[j]|0x20) >= 'a' && (s[j]|0x20) <= 'z' {
			j++
		}
		switch s[i:j] {
		case "lt":
			r = '<'
		case "gt":
			r = '>'
		case "amp":
			r = '&'
		case "quot":
			r = '"'
		default:
			return 0, 0, false
		}
		i = j
	}
	if i < len(s) && s[i] == ';' {
		i++
	}
	return i, r, true
}

func digit(c byte, base rune) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case base == 16 && c >= 'a' && c <= 'f':
		return rune(c-'a') + 10
	case base == 16 && c >= 'A' && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}
