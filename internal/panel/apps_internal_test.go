package panel

import "testing"

func TestCommitURL(t *testing.T) {
	const sha = "5a03679905496d9c6e33f918c3be83f68e69ed25"
	for _, tc := range []struct{ repo, want string }{
		{"https://github.com/acme/shop.git", "https://github.com/acme/shop/commit/" + sha},
		{"https://gitea.example.com:3000/acme/shop", "https://gitea.example.com:3000/acme/shop/commit/" + sha},
		{"ssh://git@gitlab.com/group/sub/shop.git", "https://gitlab.com/group/sub/shop/commit/" + sha},
		{"git@github.com:acme/shop.git", "https://github.com/acme/shop/commit/" + sha},
		{"git://127.0.0.1:19418/sample.git", ""},
		{"http://127.0.0.1:8080/shop.git", ""},
		{"https://github.com/shop.git", ""},
		{"javascript:alert(1)//x/y", ""},
		{"", ""},
	} {
		if got := commitURL(tc.repo, sha); got != tc.want {
			t.Errorf("commitURL(%q) = %q, want %q", tc.repo, got, tc.want)
		}
	}
	if got := commitURL("https://github.com/acme/shop", "main"); got != "" {
		t.Errorf("a branch name got a commit link %q", got)
	}
}
