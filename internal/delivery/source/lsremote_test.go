package source

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
	sha3 = "3333333333333333333333333333333333333333"
)

func TestParseLsRemote(t *testing.T) {
	out := "ref: refs/heads/main\tHEAD\n" +
		sha1 + "\tHEAD\n" +
		sha1 + "\trefs/heads/main\n" +
		sha2 + "\trefs/tags/v1\n" +
		sha3 + "\trefs/tags/v1^{}\n"
	got, err := parseLsRemote(out)
	if err != nil {
		t.Fatal(err)
	}
	want := lsRemote{
		symrefs: map[string]string{"HEAD": "refs/heads/main"},
		objects: map[string]string{"HEAD": sha1, "refs/heads/main": sha1, "refs/tags/v1": sha2},
		peeled:  map[string]string{"refs/tags/v1": sha3},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(lsRemote{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for ref, wantSHA := range map[string]string{"HEAD": sha1, "refs/tags/v1": sha3, "refs/heads/main": sha1} {
		if sha, ok := got.commit(ref); !ok || sha != wantSHA {
			t.Errorf("commit(%s) = %s, %v; want %s", ref, sha, ok, wantSHA)
		}
	}
	if _, ok := got.commit("refs/heads/nope"); ok {
		t.Error("commit(refs/heads/nope) found")
	}
}

func TestParseLsRemoteRejects(t *testing.T) {
	for _, out := range []string{
		"garbage\n",
		"1234\trefs/heads/main\n",
		sha1 + " refs/heads/main\n",
		sha1 + "\t\n",
		"ref: \tHEAD\n",
		"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\trefs/heads/main\n",
	} {
		if _, err := parseLsRemote(out); err == nil {
			t.Errorf("parseLsRemote(%q) accepted", out)
		}
	}
}

// FuzzParseLsRemote checks that whatever a server makes ls-remote print, every ref
// parsed names a full SHA.
func FuzzParseLsRemote(f *testing.F) {
	f.Add("ref: refs/heads/main\tHEAD\n" + sha1 + "\tHEAD\n" + sha2 + "\trefs/tags/v1\n" + sha3 + "\trefs/tags/v1^{}\n")
	f.Add(sha1 + "\trefs/heads/a\tb\n")
	f.Fuzz(func(t *testing.T, out string) {
		l, err := parseLsRemote(out)
		if err != nil {
			return
		}
		for _, m := range []map[string]string{l.objects, l.peeled} {
			for ref, sha := range m {
				if !isFullSHA(sha) || ref == "" {
					t.Errorf("ref %q -> %q", ref, sha)
				}
			}
		}
	})
}
