package webhook

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strings"
)

// hubPush is the part of a GitHub or Gitea push payload Ferry reads; the two share a shape.
type hubPush struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	Repository struct {
		HTMLURL  string `json:"html_url"`
		CloneURL string `json:"clone_url"`
		SSHURL   string `json:"ssh_url"`
		GitURL   string `json:"git_url"`
		URL      string `json:"url"`
	} `json:"repository"`
}

// gitlabPush is the part of a GitLab push or tag push payload Ferry reads.
type gitlabPush struct {
	Ref         string `json:"ref"`
	After       string `json:"after"`
	CheckoutSHA string `json:"checkout_sha"`
	Project     struct {
		GitHTTPURL string `json:"git_http_url"`
		GitSSHURL  string `json:"git_ssh_url"`
		WebURL     string `json:"web_url"`
	} `json:"project"`
	Repository struct {
		GitHTTPURL string `json:"git_http_url"`
		GitSSHURL  string `json:"git_ssh_url"`
		Homepage   string `json:"homepage"`
		URL        string `json:"url"`
	} `json:"repository"`
}

func decode(provider, contentType string, body []byte) (Push, error) {
	switch provider {
	case GitHub, Gitea:
		payload, err := formPayload(provider, contentType, body)
		if err != nil {
			return Push{}, err
		}
		var p hubPush
		if err := json.Unmarshal(payload, &p); err != nil {
			return Push{}, fmt.Errorf("%w: %s push: %w", ErrMalformed, provider, err)
		}
		r := p.Repository
		urls := []string{r.HTMLURL, r.CloneURL, r.SSHURL}
		if provider == GitHub {
			// Gitea's repository.url is its API address, which names no clone.
			urls = append(urls, r.GitURL, r.URL)
		}
		return newPush(provider, p.Ref, p.After, p.Deleted, urls)
	default:
		var p gitlabPush
		if err := json.Unmarshal(body, &p); err != nil {
			return Push{}, fmt.Errorf("%w: %s push: %w", ErrMalformed, provider, err)
		}
		// For an annotated tag "after" is the tag object; checkout_sha is the commit it names,
		// and is null when the ref was deleted.
		after := p.After
		if p.CheckoutSHA != "" {
			after = p.CheckoutSHA
		}
		urls := []string{
			p.Project.GitHTTPURL, p.Project.GitSSHURL, p.Project.WebURL,
			p.Repository.GitHTTPURL, p.Repository.GitSSHURL, p.Repository.Homepage, p.Repository.URL,
		}
		return newPush(provider, p.Ref, after, false, urls)
	}
}

// formPayload returns the JSON document of a GitHub or Gitea body, which either is the
// document or, for a hook set to application/x-www-form-urlencoded, carries it as payload=.
func formPayload(provider, contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %s form body: %w", ErrMalformed, provider, err)
	}
	if !form.Has("payload") {
		return nil, fmt.Errorf("%w: %s form body has no payload field", ErrMalformed, provider)
	}
	return []byte(form.Get("payload")), nil
}

func newPush(provider, ref, after string, deleted bool, urls []string) (Push, error) {
	if ref == "" {
		return Push{}, fmt.Errorf("%w: %s push has no ref", ErrMalformed, provider)
	}
	p := Push{Provider: provider, Ref: ref, After: after, Deleted: deleted || isZeroSHA(after)}
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		p.Branch = b
	}
	if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		p.Tag = t
	}
	for _, u := range urls {
		if u != "" && !slices.Contains(p.RepoURLs, u) {
			p.RepoURLs = append(p.RepoURLs, u)
		}
	}
	if len(p.RepoURLs) == 0 {
		return Push{}, fmt.Errorf("%w: %s push names no repository URL", ErrMalformed, provider)
	}
	return p, nil
}

// isZeroSHA reports the all-zero SHA providers send as "after" for a deleted ref (40 digits
// for SHA-1 repositories, 64 for SHA-256 ones).
func isZeroSHA(s string) bool {
	return s != "" && strings.Trim(s, "0") == ""
}
