package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	githubSecret = "gh-s3cret-never-shown"
	gitlabToken  = "gl-t0ken-never-shown"
	giteaSecret  = "gt-s3cret-never-shown"
	// payloadMarker is in every fixture's commit message: it must reach no log or answer.
	payloadMarker = "payload-marker-7f3a"
	zeroSHA       = "0000000000000000000000000000000000000000"
)

var testSecrets = Secrets{GitHub: githubSecret, GitLab: gitlabToken, Gitea: giteaSecret}

var (
	githubURLs = []string{
		"https://github.com/ferrycd/demo-apps",
		"https://github.com/ferrycd/demo-apps.git",
		"git@github.com:ferrycd/demo-apps.git",
		"git://github.com/ferrycd/demo-apps.git",
	}
	gitlabURLs = []string{
		"https://gitlab.example.com/platform/deploy.git",
		"ssh://git@gitlab.example.com:2222/platform/deploy.git",
		"https://gitlab.example.com/platform/deploy",
	}
	giteaURLs = []string{
		"https://git.example.com/team/infra",
		"https://git.example.com/team/infra.git",
		"git@git.example.com:team/infra.git",
	}
	githubMain = Push{
		Provider: GitHub, RepoURLs: githubURLs, Ref: "refs/heads/main", Branch: "main",
		After: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
	}
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hmacHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// request is a POST of body with the given header names and values, in pairs.
func request(body []byte, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/webhook", bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

// githubRequest is what GitHub sends for a hook with content type application/json.
func githubRequest(event string, body []byte) *http.Request {
	return request(body, "Content-Type", "application/json", "X-GitHub-Event", event,
		"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"X-Hub-Signature-256", "sha256="+hmacHex(githubSecret, body))
}

func gitlabRequest(event string, body []byte) *http.Request {
	return request(body, "Content-Type", "application/json", "X-Gitlab-Event", event,
		"X-Gitlab-Token", gitlabToken, "X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e")
}

// giteaRequest is what Gitea sends: its own headers and, for compatibility, GitHub's.
func giteaRequest(event string, body []byte) *http.Request {
	sig := hmacHex(giteaSecret, body)
	return request(body, "Content-Type", "application/json",
		"X-Gitea-Event", event, "X-Gitea-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473",
		"X-Gitea-Signature", sig, "X-GitHub-Event", event, "X-Hub-Signature-256", "sha256="+sig)
}

func formBody(payload []byte) []byte {
	return []byte("payload=" + url.QueryEscape(string(payload)))
}

func TestParse(t *testing.T) {
	githubPush := fixture(t, "github-push.json")
	githubForm := formBody(githubPush)
	gitlabPush := fixture(t, "gitlab-push.json")
	giteaPush := fixture(t, "gitea-push.json")
	giteaForm := formBody(giteaPush)
	signed := func(body []byte) *http.Request { return githubRequest("push", body) }

	chunked := githubRequest("push", githubPush)
	chunked.ContentLength = -1 // as for a chunked body: only reading finds the size

	tests := []struct {
		name     string
		req      *http.Request
		secrets  *Secrets // testSecrets when nil
		maxBytes int64
		want     Push
		wantErr  error
	}{
		{name: "github push", req: githubRequest("push", githubPush), want: githubMain},
		{
			name: "github tag push",
			req:  githubRequest("push", fixture(t, "github-tag-push.json")),
			want: Push{
				Provider: GitHub, RepoURLs: githubURLs, Ref: "refs/tags/v1.4.2", Tag: "v1.4.2",
				After: "5c2b8b1e0f4a3d6e7f8091a2b3c4d5e6f7a8b9c0",
			},
		},
		{
			name: "github deleted branch",
			req:  githubRequest("push", fixture(t, "github-delete.json")),
			want: Push{
				Provider: GitHub, RepoURLs: githubURLs, Ref: "refs/heads/feature/login-form",
				Branch: "feature/login-form", After: zeroSHA, Deleted: true,
			},
		},
		{
			name: "github form-encoded",
			req: request(githubForm, "Content-Type", "application/x-www-form-urlencoded; charset=utf-8",
				"X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+hmacHex(githubSecret, githubForm)),
			want: githubMain,
		},
		{
			name: "github uppercase hex signature",
			req: request(githubPush, "X-GitHub-Event", "push",
				"X-Hub-Signature-256", "sha256="+strings.ToUpper(hmacHex(githubSecret, githubPush))),
			want: githubMain,
		},
		{name: "body exactly at the bound", req: githubRequest("push", githubPush), maxBytes: int64(len(githubPush)), want: githubMain},
		{
			name: "gitlab push",
			req:  gitlabRequest("Push Hook", gitlabPush),
			want: Push{
				Provider: GitLab, RepoURLs: gitlabURLs, Ref: "refs/heads/main", Branch: "main",
				After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			},
		},
		{
			name: "gitlab tag push gives the commit, not the tag object",
			req:  gitlabRequest("Tag Push Hook", fixture(t, "gitlab-tag-push.json")),
			want: Push{
				Provider: GitLab, RepoURLs: gitlabURLs, Ref: "refs/tags/v2.0.0", Tag: "v2.0.0",
				After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			},
		},
		{
			name: "gitlab deleted branch",
			req:  gitlabRequest("Push Hook", fixture(t, "gitlab-delete.json")),
			want: Push{
				Provider: GitLab, RepoURLs: gitlabURLs, Ref: "refs/heads/preview/pr-17",
				Branch: "preview/pr-17", After: zeroSHA, Deleted: true,
			},
		},
		{
			name: "gitea push",
			req:  giteaRequest("push", giteaPush),
			want: Push{
				Provider: Gitea, RepoURLs: giteaURLs, Ref: "refs/heads/develop", Branch: "develop",
				After: "bffeb74224043ba2feb48d137756c8a9331c449a",
			},
		},
		{
			name: "gitea form-encoded",
			req: request(giteaForm, "Content-Type", "application/x-www-form-urlencoded",
				"X-Gitea-Event", "push", "X-Gitea-Signature", hmacHex(giteaSecret, giteaForm)),
			want: Push{
				Provider: Gitea, RepoURLs: giteaURLs, Ref: "refs/heads/develop", Branch: "develop",
				After: "bffeb74224043ba2feb48d137756c8a9331c449a",
			},
		},
		{
			name: "forgejo push",
			req: request(giteaPush, "Content-Type", "application/json", "X-Forgejo-Event", "push",
				"X-Forgejo-Signature", hmacHex(giteaSecret, giteaPush)),
			want: Push{
				Provider: Gitea, RepoURLs: giteaURLs, Ref: "refs/heads/develop", Branch: "develop",
				After: "bffeb74224043ba2feb48d137756c8a9331c449a",
			},
		},

		{name: "GET", req: httptest.NewRequest(http.MethodGet, "/api/webhook", nil), wantErr: ErrMethod},
		{name: "no provider header", req: request(githubPush, "Content-Type", "application/json"), wantErr: ErrUnsupported},
		{name: "gogs is not gitea", req: request(giteaPush, "X-Gogs-Event", "push", "X-Gogs-Signature", hmacHex(giteaSecret, giteaPush)), wantErr: ErrUnsupported},
		{name: "github event of the wrong shape", req: githubRequest("Push", githubPush), wantErr: ErrUnsupported},
		{name: "gitlab event of the wrong shape", req: gitlabRequest("push", gitlabPush), wantErr: ErrUnsupported},
		{name: "github ping", req: githubRequest("ping", fixture(t, "github-ping.json")), wantErr: ErrPing},
		{name: "github issues", req: githubRequest("issues", fixture(t, "github-issues.json")), wantErr: ErrIgnored},
		{name: "gitlab merge request", req: gitlabRequest("Merge Request Hook", []byte(`{"object_kind":"merge_request"}`)), wantErr: ErrIgnored},
		{name: "gitea create", req: giteaRequest("create", []byte(`{"ref":"v1","ref_type":"tag"}`)), wantErr: ErrIgnored},

		{name: "github unsigned ping", req: request(fixture(t, "github-ping.json"), "X-GitHub-Event", "ping"), wantErr: ErrUnauthorized},
		{name: "github unsigned issues", req: request(githubPush, "X-GitHub-Event", "issues"), wantErr: ErrUnauthorized},
		{name: "github missing signature", req: request(githubPush, "X-GitHub-Event", "push"), wantErr: ErrUnauthorized},
		{
			name:    "github signed with another secret",
			req:     request(githubPush, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+hmacHex("guess", githubPush)),
			wantErr: ErrUnauthorized,
		},
		{
			name:    "github body changed after signing",
			req:     request(bytes.Replace(githubPush, []byte("refs/heads/main"), []byte("refs/heads/prod"), 1), "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+hmacHex(githubSecret, githubPush)),
			wantErr: ErrUnauthorized,
		},
		{
			name:    "github signature without sha256= prefix",
			req:     request(githubPush, "X-GitHub-Event", "push", "X-Hub-Signature-256", hmacHex(githubSecret, githubPush)),
			wantErr: ErrUnauthorized,
		},
		{
			name:    "github signature not hex",
			req:     request(githubPush, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256=zz"),
			wantErr: ErrUnauthorized,
		},
		{
			name:    "github signature truncated",
			req:     request(githubPush, "X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+hmacHex(githubSecret, githubPush)[:40]),
			wantErr: ErrUnauthorized,
		},
		{
			name: "github sha1 signature only",
			req: request(githubPush, "X-GitHub-Event", "push",
				"X-Hub-Signature", "sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
			wantErr: ErrUnauthorized,
		},
		{name: "github without a configured secret", req: githubRequest("push", githubPush), secrets: &Secrets{GitLab: gitlabToken, Gitea: giteaSecret}, wantErr: ErrUnauthorized},
		{name: "gitlab without a configured token", req: gitlabRequest("Push Hook", gitlabPush), secrets: &Secrets{GitHub: githubSecret}, wantErr: ErrUnauthorized},
		{name: "gitea without a configured secret", req: giteaRequest("push", giteaPush), secrets: &Secrets{GitHub: githubSecret}, wantErr: ErrUnauthorized},
		{name: "gitlab missing token", req: request(gitlabPush, "X-Gitlab-Event", "Push Hook"), wantErr: ErrUnauthorized},
		{name: "gitlab wrong token", req: request(gitlabPush, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", gitlabToken+"x"), wantErr: ErrUnauthorized},
		{name: "gitlab token is not the github secret", req: request(gitlabPush, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", githubSecret), wantErr: ErrUnauthorized},
		{name: "gitea missing signature", req: request(giteaPush, "X-Gitea-Event", "push"), wantErr: ErrUnauthorized},
		{
			name:    "gitea signed with the github secret",
			req:     request(giteaPush, "X-Gitea-Event", "push", "X-Gitea-Signature", hmacHex(githubSecret, giteaPush)),
			wantErr: ErrUnauthorized,
		},
		{
			name:    "gitea with only github's signature header",
			req:     request(giteaPush, "X-Gitea-Event", "push", "X-Hub-Signature-256", "sha256="+hmacHex(giteaSecret, giteaPush)),
			wantErr: ErrUnauthorized,
		},

		{name: "over the bound by Content-Length", req: githubRequest("push", githubPush), maxBytes: 1024, wantErr: ErrTooLarge},
		{name: "over the bound while reading", req: chunked, maxBytes: int64(len(githubPush)) - 1, wantErr: ErrTooLarge},

		{name: "malformed JSON", req: signed([]byte(`{"ref":"refs/heads/main",`)), wantErr: ErrMalformed},
		{name: "empty body", req: signed(nil), wantErr: ErrMalformed},
		{name: "JSON of the wrong type", req: signed([]byte(`{"ref":1}`)), wantErr: ErrMalformed},
		{name: "JSON array", req: signed([]byte(`[]`)), wantErr: ErrMalformed},
		{name: "trailing data", req: signed(append(bytes.Clone(githubPush), "{}"...)), wantErr: ErrMalformed},
		{name: "no ref", req: signed([]byte(`{"after":"abc","repository":{"clone_url":"https://github.com/a/b.git"}}`)), wantErr: ErrMalformed},
		{name: "no repository", req: signed([]byte(`{"ref":"refs/heads/main","after":"abc"}`)), wantErr: ErrMalformed},
		{
			name: "form without payload",
			req: request([]byte("body=x"), "Content-Type", "application/x-www-form-urlencoded",
				"X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+hmacHex(githubSecret, []byte("body=x"))),
			wantErr: ErrMalformed,
		},
		{
			name: "form with a bad escape",
			req: request([]byte("payload=%zz"), "Content-Type", "application/x-www-form-urlencoded",
				"X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+hmacHex(githubSecret, []byte("payload=%zz"))),
			wantErr: ErrMalformed,
		},
		{name: "gitlab malformed", req: gitlabRequest("Push Hook", []byte(`{"ref":`)), wantErr: ErrMalformed},
		{name: "gitlab no repository", req: gitlabRequest("Push Hook", []byte(`{"ref":"refs/heads/main"}`)), wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := testSecrets
			if tt.secrets != nil {
				secrets = *tt.secrets
			}
			got, err := Parse(tt.req, secrets, tt.maxBytes)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if n := sentinels(err); n != 1 {
					t.Errorf("Parse() error %q wraps %d of the Err values, want 1", err, n)
				}
				for _, s := range []string{githubSecret, gitlabToken, giteaSecret, payloadMarker} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("Parse() error %q quotes %q", err, s)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// sentinels counts the Err values err wraps.
func sentinels(err error) int {
	n := 0
	for _, s := range []error{ErrMethod, ErrUnsupported, ErrUnauthorized, ErrTooLarge, ErrMalformed, ErrPing, ErrIgnored} {
		if errors.Is(err, s) {
			n++
		}
	}
	return n
}

// failingReader fails as a connection cut mid-body does.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestParseReadError(t *testing.T) {
	r := githubRequest("push", nil)
	r.Body = io.NopCloser(failingReader{})
	_, err := Parse(r, testSecrets, 0)
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Parse() error = %v, want ErrMalformed wrapping io.ErrUnexpectedEOF", err)
	}
}
