package source

import (
	"fmt"
	"strings"
)

// lsRemote is what git ls-remote --symref printed: the server's answer, so parsed
// strictly.
type lsRemote struct {
	symrefs map[string]string // name -> target ref, e.g. HEAD -> refs/heads/main
	objects map[string]string // ref -> object SHA (a tag object for annotated tags)
	peeled  map[string]string // ref -> commit SHA an annotated tag points at
}

// parseLsRemote reads lines of "<sha>\t<ref>", "<sha>\t<ref>^{}" and
// "ref: <target>\t<name>".
func parseLsRemote(out string) (lsRemote, error) {
	l := lsRemote{symrefs: map[string]string{}, objects: map[string]string{}, peeled: map[string]string{}}
	for n, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		left, name, ok := strings.Cut(line, "\t")
		if !ok || name == "" || strings.ContainsAny(name, "\t\r") {
			return lsRemote{}, fmt.Errorf("line %d: not <object>\\t<ref>", n+1)
		}
		if target, ok := strings.CutPrefix(left, "ref: "); ok {
			if target == "" || strings.ContainsAny(target, " \r") {
				return lsRemote{}, fmt.Errorf("line %d: bad symref target", n+1)
			}
			l.symrefs[name] = target
			continue
		}
		if !isFullSHA(left) {
			return lsRemote{}, fmt.Errorf("line %d: bad object name", n+1)
		}
		sha := strings.ToLower(left)
		if ref, ok := strings.CutSuffix(name, "^{}"); ok {
			l.peeled[ref] = sha
		} else {
			l.objects[name] = sha
		}
	}
	return l, nil
}

// commit returns the commit ref names, peeling annotated tags.
func (l lsRemote) commit(ref string) (string, bool) {
	if sha, ok := l.peeled[ref]; ok {
		return sha, true
	}
	sha, ok := l.objects[ref]
	return sha, ok
}
