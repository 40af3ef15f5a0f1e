package errtrack

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

// The rules Fingerprint applies, in order; the kind it returns names the one that decided.
const (
	// GroupByFingerprint: the client sent a fingerprint.
	GroupByFingerprint = "fingerprint"
	// GroupByStacktrace: the exceptions' stack frames.
	GroupByStacktrace = "stacktrace"
	// GroupByException: the exceptions' types and normalized values, with no usable frames.
	GroupByException = "exception"
	// GroupByMessage: the normalized message, for an event without exceptions.
	GroupByMessage = "message"
	// GroupByFallback: nothing to group on; all such events of a project form one issue.
	GroupByFallback = "fallback"
)

// groupingVersion is hashed first: changing any rule below changes it, so that old and
// new hashes never meet by accident.
const groupingVersion = "ferry-grouping-1"

// The lengths, in bytes, of a title and a culprit.
const (
	MaxTitleLength   = 200
	MaxCulpritLength = 200
)

// Fingerprint returns the grouping hash of e, 64 hex digits of SHA-256, and which rule
// produced it (GroupByFingerprint, ...). Events with the same hash are one issue. The rules,
// in Sentry's order:
//
//  1. The client's fingerprint, when it sent a non-empty one. An element "{{ default }}"
//     (spaces optional) stands for the components of rules 2–5, so ["{{ default }}", "eu"]
//     splits the default group by region, and ["{{ default }}"] alone is the default.
//  2. The exceptions' stack frames, every exception of the chain in order: its type, then
//     each frame as module (or, without one, the file name stripped of query, line numbers
//     and hash-like parts) and function, never the line number, so moving code does not
//     split an issue. When any frame is marked in_app only in-app frames count; when none
//     is, all do. Directly repeated frames (recursion) count once. When no exception has
//     frames, the crashed (or current, or only) thread's stack, else the event's own stack,
//     stands in for the last exception's. A message event's stack, as SDKs attach to log
//     calls, is not used: it would put every message logged through one helper in one issue.
//  3. The exceptions' types and values, the values normalized (normalizeValue): numbers,
//     hex ids, UUIDs, IP addresses, emails, dates, and digits in quoted strings.
//  4. The message: the logging template when the SDK sent one, else the formatted
//     message, normalized the same way.
//  5. Nothing: one fallback group.
//
// Fingerprint reads e as it is; the ingest calls it after Normalize, so that an event
// stored and read back hashes the same.
func Fingerprint(e Event) (hash, kind string) {
	kind, comps := defaultGrouping(e)
	// A fingerprint of only "{{ default }}", which some SDKs send on every event, is the
	// default one.
	ownElement := func(el string) bool { return !isDefaultVar(el) }
	if fp := e.Fingerprint; slices.ContainsFunc(fp, ownElement) {
		client := make([]string, 0, len(fp)+len(comps))
		for _, el := range fp {
			if isDefaultVar(el) {
				client = append(client, "default:"+kind)
				client = append(client, comps...)
				continue
			}
			client = append(client, "fp:"+el)
		}
		kind, comps = GroupByFingerprint, client
	}
	// Length-prefixed, so that no two lists of components write the same bytes; hashed in
	// one call, which costs a third of writing each piece to the hash.
	size := len(groupingVersion) + len(kind) + 8
	for _, c := range comps {
		size += len(c) + 6
	}
	buf := make([]byte, 0, size)
	for _, c := range append([]string{groupingVersion, kind}, comps...) {
		buf = strconv.AppendInt(buf, int64(len(c)), 10)
		buf = append(buf, ':')
		buf = append(buf, c...)
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), kind
}

// isDefaultVar reports whether a fingerprint element is "{{ default }}".
func isDefaultVar(s string) bool {
	s = strings.TrimSpace(s)
	inner, ok := strings.CutPrefix(s, "{{")
	if !ok {
		return false
	}
	inner, ok = strings.CutSuffix(inner, "}}")
	return ok && strings.EqualFold(strings.TrimSpace(inner), "default")
}

// defaultGrouping applies rules 2 to 5.
func defaultGrouping(e Event) (string, []string) {
	if comps := stacktraceComponents(e); comps != nil {
		return GroupByStacktrace, comps
	}
	if comps := exceptionComponents(e); comps != nil {
		return GroupByException, comps
	}
	if m := groupingMessage(e); m != "" {
		return GroupByMessage, []string{"message:" + normalizeValue(m)}
	}
	return GroupByFallback, nil
}

// exceptionStacks returns each exception's frames, with the stand-in stack of rule 2
// given to the last exception when none has frames of its own.
func exceptionStacks(e Event) [][]Frame {
	if len(e.Exception) == 0 {
		return nil
	}
	stacks := make([][]Frame, len(e.Exception))
	found := false
	for i, ex := range e.Exception {
		if ex.Stacktrace != nil && len(ex.Stacktrace.Frames) > 0 {
			stacks[i] = ex.Stacktrace.Frames
			found = true
		}
	}
	if !found {
		stacks[len(stacks)-1] = standInFrames(e)
	}
	return stacks
}

// standInFrames returns the frames of the crashed thread, else the current thread, else
// the only thread, else the event's own stack trace.
func standInFrames(e Event) []Frame {
	for _, pick := range []func(Thread) bool{
		func(t Thread) bool { return t.Crashed },
		func(t Thread) bool { return t.Current },
		func(Thread) bool { return len(e.Threads) == 1 },
	} {
		for _, t := range e.Threads {
			if pick(t) && t.Stacktrace != nil && len(t.Stacktrace.Frames) > 0 {
				return t.Stacktrace.Frames
			}
		}
	}
	if e.Stacktrace != nil {
		return e.Stacktrace.Frames
	}
	return nil
}

// stacktraceComponents applies rule 2; nil when no frame contributes.
func stacktraceComponents(e Event) []string {
	stacks := exceptionStacks(e)
	inAppOnly := false
	for _, frames := range stacks {
		for _, f := range frames {
			if f.InApp != nil && *f.InApp {
				inAppOnly = true
			}
		}
	}
	var comps []string
	framesUsed := 0
	for i, frames := range stacks {
		comps = append(comps, "type:"+e.Exception[i].Type)
		prev := ""
		for _, f := range frames {
			if inAppOnly && (f.InApp == nil || !*f.InApp) {
				continue
			}
			k := frameKey(f)
			if k == "" || k == prev {
				continue
			}
			prev = k
			comps = append(comps, k)
			framesUsed++
		}
	}
	if framesUsed == 0 {
		return nil
	}
	return comps
}

// frameKey is the component of a frame, "frame:" and what of it grouping uses: where
// (module, else file) and what (function, else the source line), never the line number.
// It is empty when the frame has neither.
func frameKey(f Frame) string {
	where := f.Module
	if where == "" {
		where = cleanFilename(f.Filename)
	}
	if where == "" && f.AbsPath != "" {
		// An absolute path says where the code was built or installed: keep the file's name.
		where = path.Base(cleanFilename(f.AbsPath))
	}
	what := f.Function
	if what == "" || what == "?" {
		what = f.RawFunction
	}
	if what == "" || what == "?" {
		what = strings.TrimSpace(f.ContextLine)
	}
	if where == "" && what == "" {
		return ""
	}
	// Java lambdas' and JavaScript bundles' numbers and addresses change between builds.
	// The key is the whole component, "frame:" included, built in one allocation.
	return "frame:" + normalizeValue(where) + "\x00" + normalizeValue(what)
}

// cleanFilename strips from a file name or URL what changes between builds or requests:
// scheme and host, query, fragment, a trailing :line:column, backslashes.
func cleanFilename(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, `\`, "/")
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if _, rest, ok := strings.Cut(s, "://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			s = rest[i:]
		} else {
			s = ""
		}
	}
	for range 2 {
		i := strings.LastIndexByte(s, ':')
		if i < 0 || i == len(s)-1 || strings.Trim(s[i+1:], "0123456789") != "" {
			break
		}
		s = s[:i]
	}
	return s
}

// exceptionComponents applies rule 3; nil when no exception has a type or a value.
func exceptionComponents(e Event) []string {
	var comps []string
	some := false
	for _, ex := range e.Exception {
		if ex.Type != "" || ex.Value != "" {
			some = true
		}
		comps = append(comps, "type:"+ex.Type, "value:"+normalizeValue(ex.Value))
	}
	if !some {
		return nil
	}
	return comps
}

// groupingMessage is the template when there is one, else the formatted message.
func groupingMessage(e Event) string {
	if e.LogEntry == nil {
		return ""
	}
	if e.LogEntry.Message != "" {
		return e.LogEntry.Message
	}
	return e.LogEntry.Formatted
}

// Title returns the issue title Sentry shows for e: "Type: value" of the raised (last)
// exception, with the value's first line; else the message's first line (the formatted
// one, as users read it); else the transaction; else "<unlabeled event>". It is cut to
// MaxTitleLength.
func Title(e Event) string {
	for i := len(e.Exception) - 1; i >= 0; i-- {
		ex := e.Exception[i]
		v := firstLine(ex.Value)
		switch {
		case ex.Type != "" && v != "":
			return truncate(ex.Type+": "+v, MaxTitleLength)
		case ex.Type != "":
			return truncate(ex.Type, MaxTitleLength)
		case v != "":
			return truncate(v, MaxTitleLength)
		}
	}
	if le := e.LogEntry; le != nil {
		m := le.Formatted
		if m == "" {
			m = le.Message
		}
		if m = firstLine(m); m != "" {
			return truncate(m, MaxTitleLength)
		}
	}
	if e.Transaction != "" {
		return truncate(e.Transaction, MaxTitleLength)
	}
	return "<unlabeled event>"
}

// Culprit returns where the error happened: the crashing frame written
// "module.function in file", as a Go, Java or Python stack trace names a function, plus the
// file's base name (for example "main.handler in server.go"); "module.function" or
// "function in file" when a part is missing. The crashing frame is the last in-app frame
// of the raised exception's stack (the last exception with frames, or rule 2's stand-in),
// or its last frame when no frame is in-app. Without frames the culprit is the transaction,
// as Sentry shows for events that have one. It is cut to MaxCulpritLength.
func Culprit(e Event) string {
	if f, ok := crashFrame(e); ok {
		if c := describeFrame(f); c != "" {
			return truncate(c, MaxCulpritLength)
		}
	}
	return truncate(e.Transaction, MaxCulpritLength)
}

// crashFrame picks the frame Culprit describes.
func crashFrame(e Event) (Frame, bool) {
	var frames []Frame
	stacks := exceptionStacks(e)
	for i := len(stacks) - 1; i >= 0 && frames == nil; i-- {
		if len(stacks[i]) > 0 {
			frames = stacks[i]
		}
	}
	for i := len(frames) - 1; i >= 0; i-- {
		if f := frames[i]; f.InApp != nil && *f.InApp {
			return f, true
		}
	}
	if len(frames) > 0 {
		return frames[len(frames)-1], true
	}
	return Frame{}, false
}

func describeFrame(f Frame) string {
	name := f.Function
	if name == "?" {
		name = ""
	}
	switch {
	case f.Module != "" && name == "":
		name = f.Module
	case f.Module != "" && !strings.HasPrefix(name, f.Module):
		name = f.Module + "." + name
	}
	file := cleanFilename(f.Filename)
	if file == "" {
		file = cleanFilename(f.AbsPath)
	}
	if file != "" {
		file = path.Base(file)
	}
	switch {
	case name != "" && file != "":
		return name + " in " + file
	case name != "":
		return name
	}
	return file
}

// firstLine returns the first line of s that is not blank, trimmed.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// normalizeValue replaces the parts of an exception value or message that change between
// occurrences of one error with placeholders, scanning once from the left:
//
//   - <email>: local@domain.tld
//   - <uuid>: 8-4-4-4-12 hex digits
//   - <date>: 2006-01-02, with an optional time and zone
//   - <ip>: IPv4 dotted quads and IPv6 addresses
//   - <hex>: 0x numbers, and runs of 8 or more hex digits with both digits and letters
//     (an ObjectID, a SHA); letters alone ("deadbeef") are a word
//   - <num>: numbers, with a decimal part, that do not follow a letter, digit or
//     underscore, so that names such as int64, utf8 or v2 stay; a unit may follow
//     (500ms, 2nd)
//
// and, inside '…', "…" or `…` quotes on one line, also the digits within words, since a
// quoted 'order_12345' is an id. It is idempotent, and linear in len(s).
func normalizeValue(s string) string {
	if !strings.ContainsAny(s, "0123456789@") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	scanValue(&b, s, false, 0)
	return b.String()
}

// scanValue writes s normalized to b. Whether a token may start depends on the byte
// before it, and that is the byte last written, not the one in s: after "1" became
// "<num>", the next byte follows a '>', as it will when the result is normalized again.
//
// Each match looks at a bounded number of bytes (an email at most 64 + 255, an IPv6
// address 45), so that trying one from every start keeps the scan linear.
func scanValue(b *strings.Builder, s string, quoted bool, last byte) {
	for i := 0; i < len(s); {
		c := s[i]
		if !quoted && (c == '\'' || c == '"' || c == '`') {
			if j := closingQuote(s, i); j > 0 {
				b.WriteByte(c)
				scanValue(b, s[i+1:j], true, c)
				b.WriteByte(c)
				last = c
				i = j + 1
				continue
			}
		}
		n, placeholder := 0, ""
		if isLocalPart(c) && !isLocalPart(last) {
			n, placeholder = matchEmail(s[i:]), "<email>"
		}
		if n == 0 && isIPv6Char(c) && c != '.' && !isIPv6Char(last) && !isWord(last) {
			n, placeholder = matchIPv6(s[i:]), "<ip>"
		}
		if n == 0 && isWord(c) && !isWord(last) {
			n, placeholder = matchToken(s[i:])
		}
		switch {
		case n > 0:
		case isDigit(c) && (quoted || !isWord(last)):
			n, placeholder = numberLength(s[i:]), "<num>"
		case isWord(c) && !quoted:
			// No placeholder starts inside a word outside quotes: copy it whole.
			j := i + 1
			for j < len(s) && isWord(s[j]) {
				j++
			}
			b.WriteString(s[i:j])
			last = s[j-1]
			i = j
			continue
		default:
			b.WriteByte(c)
			last = c
			i++
			continue
		}
		b.WriteString(placeholder)
		last = '>'
		i += n
	}
}

// closingQuote returns the index of the quote closing the one at s[i] on the same line,
// or -1. A quote that finds none has no later twin on its line, so each line is scanned
// at most once per kind of quote that fails: linear time.
func closingQuote(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case q:
			return j
		case '\n':
			return -1
		}
	}
	return -1
}

// matchToken matches, at the start of a word, a UUID, a date, an IPv4 address or a hex
// id, and returns its length and placeholder.
func matchToken(t string) (int, string) {
	if n := matchUUID(t); n > 0 {
		return n, "<uuid>"
	}
	if n := matchDate(t); n > 0 {
		return n, "<date>"
	}
	if n := matchIPv4(t); n > 0 {
		return n, "<ip>"
	}
	if n := matchHex(t); n > 0 {
		return n, "<hex>"
	}
	return 0, ""
}

func matchUUID(t string) int {
	const layout = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
	if len(t) < len(layout) || !endsToken(t, len(layout)) {
		return 0
	}
	for i := range len(layout) {
		if layout[i] == '-' && t[i] != '-' || layout[i] == 'x' && !isHex(t[i]) {
			return 0
		}
	}
	return len(layout)
}

// matchDate matches 2006-01-02, then optionally T15:04, :05, a fraction, and Z or an offset.
func matchDate(t string) int {
	if !digitsAt(t, 0, 4) || !byteAt(t, 4, '-') || !digitsAt(t, 5, 2) || !byteAt(t, 7, '-') || !digitsAt(t, 8, 2) {
		return 0
	}
	n := 10
	hasTime := (byteAt(t, n, 'T') || byteAt(t, n, ' ')) && digitsAt(t, n+1, 2) && byteAt(t, n+3, ':') && digitsAt(t, n+4, 2)
	if !hasTime {
		return n
	}
	n += 6
	if byteAt(t, n, ':') && digitsAt(t, n+1, 2) {
		n += 3
		if (byteAt(t, n, '.') || byteAt(t, n, ',')) && digitsAt(t, n+1, 1) {
			n += 2
			for n < len(t) && isDigit(t[n]) {
				n++
			}
		}
	}
	switch {
	case byteAt(t, n, 'Z'):
		n++
	case (byteAt(t, n, '+') || byteAt(t, n, '-')) && digitsAt(t, n+1, 2):
		m := n + 3
		if byteAt(t, m, ':') {
			m++
		}
		if digitsAt(t, m, 2) {
			n = m + 2
		}
	}
	return n
}

func byteAt(t string, i int, c byte) bool { return i < len(t) && t[i] == c }

// digitsAt reports whether t[i:i+n] are n digits.
func digitsAt(t string, i, n int) bool {
	if i+n > len(t) {
		return false
	}
	for k := i; k < i+n; k++ {
		if !isDigit(t[k]) {
			return false
		}
	}
	return true
}

// matchIPv4 matches four dot-separated groups of one to three digits, not followed by a
// word character.
func matchIPv4(t string) int {
	i := 0
	for group := range 4 {
		if group > 0 {
			if i >= len(t) || t[i] != '.' {
				return 0
			}
			i++
		}
		start := i
		for i < len(t) && isDigit(t[i]) && i-start < 3 {
			i++
		}
		if i == start {
			return 0
		}
	}
	if !endsToken(t, i) {
		return 0
	}
	return i
}

// matchIPv6 matches a run of hex digits, colons and dots with at least two colons and a
// digit that parses as an IPv6 address ("::ffff:10.0.0.1" too). "::" alone, as in
// std::vector, is not one.
func matchIPv6(t string) int {
	const maxLen = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")
	n, colons, digit := 0, 0, false
	for n < len(t) && isIPv6Char(t[n]) && n <= maxLen {
		colons += b2i(t[n] == ':')
		digit = digit || isDigit(t[n])
		n++
	}
	if n > maxLen || colons < 2 || !digit || !endsToken(t, n) {
		return 0
	}
	for n > 0 && t[n-1] == '.' { // the end of a sentence
		n--
	}
	if a, err := netip.ParseAddr(t[:n]); err != nil || !a.Is6() {
		return 0
	}
	return n
}

// matchHex matches 0x and hex digits, or 8 or more hex digits mixing digits and letters,
// not followed by a word character.
func matchHex(t string) int {
	if len(t) > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') && isHex(t[2]) {
		n := 3
		for n < len(t) && isHex(t[n]) {
			n++
		}
		if !endsToken(t, n) {
			return 0
		}
		return n
	}
	n, digits := 0, 0
	for n < len(t) && isHex(t[n]) {
		digits += b2i(isDigit(t[n]))
		n++
	}
	if n < 8 || digits == 0 || digits == n || !endsToken(t, n) {
		return 0
	}
	return n
}

// numberLength is the length of the digits at the start of t, with a decimal part.
func numberLength(t string) int {
	n := 0
	for n < len(t) && isDigit(t[n]) {
		n++
	}
	if n+1 < len(t) && t[n] == '.' && isDigit(t[n+1]) {
		n++
		for n < len(t) && isDigit(t[n]) {
			n++
		}
	}
	return n
}

// matchEmail matches local@domain.tld: a local part, and dot-separated labels of which the
// last is two or more letters.
func matchEmail(t string) int {
	const maxLocal, maxDomain = 64, 255 // RFC 5321's
	at := 0
	for at < len(t) && isLocalPart(t[at]) && at <= maxLocal {
		at++
	}
	if at == 0 || at > maxLocal || at >= len(t) || t[at] != '@' {
		return 0
	}
	t = t[:min(len(t), at+1+maxDomain)]
	end, labelStart, dots := at+1, at+1, 0
	best := 0
	for ; end <= len(t); end++ {
		if end < len(t) && (isAlnum(t[end]) || t[end] == '-') {
			continue
		}
		label := t[labelStart:end]
		if label == "" {
			break
		}
		if dots > 0 && len(label) >= 2 && strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" {
			best = end
		}
		if end == len(t) || t[end] != '.' {
			break
		}
		dots++
		labelStart = end + 1
	}
	return best
}

// endsToken reports whether a token may end before t[n]: at the end, or before a byte that
// is neither a word character nor '<'. A placeholder starts with '<', so a token cut short
// by one in a second pass ("a00::" of "a00::<num>") is no token, as it was none whole.
func endsToken(t string, n int) bool {
	return n >= len(t) || !isWord(t[n]) && t[n] != '<'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// isWord is regexp's \w: what \b separates.
func isWord(c byte) bool { return isAlnum(c) || c == '_' }

func isLocalPart(c byte) bool { return isAlnum(c) || strings.IndexByte("._%+-", c) >= 0 }

func isIPv6Char(c byte) bool { return isHex(c) || c == ':' || c == '.' }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
