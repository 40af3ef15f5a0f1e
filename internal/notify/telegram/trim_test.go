package telegram

import (
	"strings"
	"testing"
)

func TestVisibleLen(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{
		{"", 0},
		{"plain", 5},
		{"<b>bold</b>", 4},
		{`<a href="https://x.example/?a=1&amp;b=2">link</a>`, 4},
		{`<a href="x>y">z</a>`, 1},
		{"&lt;&gt;&amp;&quot;", 4},
		{"&amp without semicolon", 19},
		{"&nbsp;", 6},    // not an entity Telegram knows: shown as written
		{"&#128512;", 2}, // an emoji: two UTF-16 units
		{"&#x1F600;", 2}, // the same, in hex
		{"&#xD800;", 8},  // a lone surrogate is no character
		{"😀", 2},
		{"é", 1},
		{"a<b", 3},     // a < that starts no tag is text
		{"<b>a</>", 1}, // </> closes the innermost tag
		{"<pre>x\ny</pre>", 3},
		{"\xff", 1},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			if got := VisibleLen(tt.s); got != tt.want {
				t.Errorf("VisibleLen(%q) = %d, want %d", tt.s, got, tt.want)
			}
		})
	}
}

func TestTrim(t *testing.T) {
	tests := []struct {
		name  string
		s     string
		link  string
		limit int
		want  string
	}{
		{"fits", "<b>hello</b> world", "https://f.example/", 11, "<b>hello</b> world"},
		{"closes the open tag", "<b>hello world</b>", "", 6, "<b>hello</b>…"},
		{"keeps an entity whole", "a &amp; b", "", 4, "a &amp;…"},
		{"does not cut an entity", "a &amp; b", "", 3, "a …"},
		{"nested tags", "<b>ab<i>cd</i>ef</b>", "", 4, "<b>ab<i>c</i></b>…"},
		{"drops a tag left empty", `<b>abc</b><a href="https://f.example/">def</a>`, "", 4, "<b>abc</b>…"},
		{"drops an end tag that closes nothing", "a</i>bcdef", "", 3, "ab…"},
		{"mends misnested tags", "<b><i>ab</b>cdef</i>", "", 4, "<b><i>ab</i></b>c…"},
		{"does not split a surrogate pair", "😀😀😀", "", 4, "😀…"},
		{"escapes a < that starts no tag", "a<b cdef", "", 4, "a&lt;b…"},
		{"escapes an & that starts no entity", "&#10000000", "", 4, "&amp;#1…"},
		{"escapes an & before a name it is not", "&ltx&ltx", "", 4, "&amp;lt…"},
		{"keeps a quoted >", `<a href="x>y">abcdef</a>`, "", 3, `<a href="x>y">ab</a>…`},
		{
			"links the full message", "<b>Title</b>\nline one is much too long for it", "https://f.example/r/1?a=1&b=2", 30,
			"<b>Title</b>\n…\n\n<a href=\"https://f.example/r/1?a=1&amp;b=2\">Full message in Ferry</a>",
		},
		{"no room for the link", "abcdef", "https://f.example/", 3, "ab…"},
		{"no room at all", "abcdef", "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Trim(tt.s, tt.link, tt.limit)
			if got != tt.want {
				t.Errorf("Trim(%q, %q, %d) =\n%q, want\n%q", tt.s, tt.link, tt.limit, got, tt.want)
			}
			if n := VisibleLen(got); n > tt.limit {
				t.Errorf("VisibleLen(Trim) = %d, over the limit %d", n, tt.limit)
			}
		})
	}
}

func TestTrimMaxTextLen(t *testing.T) {
	// A deploy report whose objects list outgrows a message, with HTML throughout.
	var b strings.Builder
	b.WriteString("<b>shop-api</b> synced <code>a1b2c3d</code>\n<blockquote expandable>")
	for i := 0; b.Len() < 3*MaxTextLen; i++ {
		b.WriteString("<i>Deployment</i> web-😀 &amp; <a href=\"https://f.example/o?a=1&amp;b=2\">configured</a>\n")
	}
	b.WriteString("</blockquote>")
	const link = "https://ferry.example/releases/42"
	got := Trim(b.String(), link, MaxTextLen)
	if n := VisibleLen(got); n > MaxTextLen || n < MaxTextLen-40 {
		t.Errorf("VisibleLen(Trim) = %d, want at most %d and little less", n, MaxTextLen)
	}
	checkTrimmed(t, b.String(), link, got)
}

// FuzzTrim checks Trim's promises on any input: within the limit, balanced tags, and the text
// a prefix of the input's followed by the suffix.
func FuzzTrim(f *testing.F) {
	f.Add("<b>hello world</b>", "https://f.example/", uint16(10))
	f.Add("a &amp; b &#128512; <i>c</i>", "", uint16(4))
	f.Fuzz(func(t *testing.T, s, link string, limit uint16) {
		got := Trim(s, link, int(limit))
		if VisibleLen(s) <= int(limit) {
			if got != s {
				t.Fatalf("Trim changed %q, which fits %d, to %q", s, limit, got)
			}
			return
		}
		if n := VisibleLen(got); n > int(limit) {
			t.Fatalf("VisibleLen(Trim(%q, %q, %d)) = %d", s, link, limit, n)
		}
		if got == "" {
			return
		}
		checkTrimmed(t, s, link, got)
	})
}

// checkTrimmed checks that got, a trimmed s, has balanced tags and is a prefix of s's text
// followed by one of Trim's suffixes.
func checkTrimmed(t *testing.T, s, link, got string) {
	t.Helper()
	var stack []string
	for rest := got; rest != ""; {
		tok := next(rest)
		rest = rest[len(tok.raw):]
		switch tok.kind {
		case startToken:
			stack = append(stack, tok.name)
		case endToken:
			if len(stack) == 0 || (tok.name != "" && tok.name != stack[len(stack)-1]) {
				t.Fatalf("Trim(%q) = %q: unbalanced %s", s, got, tok.raw)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("Trim(%q) = %q: %v left open", s, got, stack)
	}
	text := visibleText(got)
	var prefix string
	switch {
	case link != "" && strings.HasSuffix(text, "…\n\nFull message in Ferry"):
		prefix = strings.TrimSuffix(text, "…\n\nFull message in Ferry")
	case strings.HasSuffix(text, "…"):
		prefix = strings.TrimSuffix(text, "…")
	default:
		t.Fatalf("Trim(%q) = %q: no suffix", s, got)
	}
	if !strings.HasPrefix(visibleText(s), prefix) {
		t.Fatalf("Trim(%q) = %q: text %q is not a prefix of the input's", s, got, prefix)
	}
}

// visibleText is s's text as Telegram shows it: tags removed, entities decoded.
func visibleText(s string) string {
	var b strings.Builder
	for rest := s; rest != ""; {
		tok := next(rest)
		rest = rest[len(tok.raw):]
		if tok.kind != charToken {
			continue
		}
		if len(tok.raw) > 1 && tok.raw[0] == '&' {
			_, r, _ := scanEntity(tok.raw)
			b.WriteRune(r)
			continue
		}
		b.WriteString(tok.raw)
	}
	return b.String()
}
