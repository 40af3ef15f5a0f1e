package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/ferrycd/ferry/internal/errtrack"
	"github.com/ferrycd/ferry/internal/store/storetest"
)

// The fixed work of one BenchmarkErrorIngest iteration: errorPosts events from errorSenders
// senders, over errorIssues issues that exist before it starts.
const (
	errorPosts   = 20000
	errorSenders = 16
	errorIssues  = 200
)

// BenchmarkErrorIngest measures ferry server (delivery and notifications off, SQLite)
// taking events as the Go SDK encodes them, in envelopes on POST /api/{id}/envelope/ with
// the SDK's X-Sentry-Auth, over HTTP keep-alive from 16 concurrent senders: 80 % repeats of
// one of 200 existing issues, 20 % new issues. Events are 5–10 KB: exceptions with stack
// traces of 20–40 frames with source context, breadcrumbs, tags, a user and a request.
//
// "noop" sends the same load to a handler on the same machine that reads the body and
// answers as Ferry does, without decoding or storing anything: the ceiling that HTTP and the
// load generator leave on these two cores.
//
// It reports events/s, latency p50/p99/max, CPU per event, the mean payload size, and the
// peak RSS of the whole test process (server, SQLite and senders).
func BenchmarkErrorIngest(b *testing.B) {
	payloads := newErrorPayloads(b)
	b.Run("noop", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id":""}`))
		}))
		defer srv.Close()
		benchErrors(b, srv.URL+"/api/1/envelope/", "", payloads, nil)
	})
	b.Run("sqlite", func(b *testing.B) {
		base, db := serveIncidents(b, storetest.SQLiteURL(b))
		p, key, err := db.CreateProject(b.Context(), errtrack.Project{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		url := fmt.Sprintf("%s/api/%d/envelope/", base, p.ID)
		auth := "Sentry sentry_version=7, sentry_client=sentry.go/" + sentry.SDKVersion + ", sentry_key=" + key.Public
		// The existing issues: one event each.
		for i := range errorIssues {
			if _, err := postEnvelope(http.DefaultClient, url, auth, payloads.envelope(i, "", errtrack.NewEventID())); err != nil {
				b.Fatal(err)
			}
		}
		benchErrors(b, url, auth, payloads, func(sent int) {
			list, err := db.FindIssues(b.Context(), errtrack.IssueQuery{ProjectID: p.ID, Limit: 1})
			if err != nil {
				b.Fatal(err)
			}
			if want := errorIssues + sent; list.Total != want {
				b.Errorf("%d issues stored, want %d: the existing ones and one per new-issue event", list.Total, want)
			}
		})
	})
}

// errorPayloads are events as sentry-go encodes them, one per issue kind, with their event
// IDs to be replaced for each post.
type errorPayloads struct {
	events [][]byte
	size   int
}

// newErrorPayloads builds the events of the errorIssues existing issues; envelope makes new
// issues' events from them.
func newErrorPayloads(b *testing.B) *errorPayloads {
	rng := rand.New(rand.NewPCG(1, 2))
	p := &errorPayloads{}
	client, err := sentry.NewClient(sentry.ClientOptions{Dsn: "http://0123456789abcdef0123456789abcdef@localhost/1",
		Release: "shop@3f2a9c1", Environment: "production", Transport: &sentry.HTTPSyncTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	scope := sentry.NewScope()
	scope.SetUser(sentry.User{ID: "u-42", Email: "ann@example.com"})
	scope.SetTags(map[string]string{"region": "eu-west", "pod": "shop-7d9f8-abcde", "feature": "checkout"})
	scope.SetRequest(httptest.NewRequest(http.MethodPost, "https://shop.example.com/api/checkout?step=pay", nil))
	for i := range 10 {
		scope.AddBreadcrumb(&sentry.Breadcrumb{Category: "http", Message: fmt.Sprintf("GET /api/cart/%d 200", i)}, 100)
	}
	for kind := range errorIssues {
		event := client.EventFromException(fmt.Errorf("order %d: %w", rng.IntN(1e6), errors.New("payment declined")), sentry.LevelError)
		event = scope.ApplyToEvent(event, nil, client)
		ex := &event.Exception[len(event.Exception)-1]
		ex.Type = fmt.Sprintf("*payments.Error%d", kind) // one issue per kind
		frames := make([]sentry.Frame, 20+rng.IntN(21))
		for f := range frames {
			frames[f] = sentry.Frame{
				// Grouping reads numbers in names as build noise, so the issue's name is in letters.
				Function: fmt.Sprintf("(*Handler).%sStep%d", letters(kind), f), Module: "github.com/example/shop/internal/checkout",
				Filename: "internal/checkout/handler.go", AbsPath: "/src/shop/internal/checkout/handler.go",
				Lineno: 100 + f, InApp: f > 5, ContextLine: "\tif err := h.payments.Charge(ctx, order); err != nil {",
			}
		}
		ex.Stacktrace = &sentry.Stacktrace{Frames: frames}
		event.EventID = sentry.EventID(errtrack.NewEventID()) // replaced at each post
		raw, err := json.Marshal(event)
		if err != nil {
			b.Fatal(err)
		}
		p.events = append(p.events, raw)
		p.size += len(raw)
	}
	p.size /= len(p.events)
	return p
}

// envelope is issue kind's event with a new event ID, in an envelope as the SDK sends it.
// A non-empty variant renames the event's in-app functions, which makes it another issue's.
func (p *errorPayloads) envelope(kind int, variant, eventID string) []byte {
	return p.appendEnvelope(nil, kind, variant, eventID)
}

// appendEnvelope appends envelope's bytes to dst: each sender reuses one buffer, so that
// the load generator's garbage is not counted against Ferry.
func (p *errorPayloads) appendEnvelope(dst []byte, kind int, variant, eventID string) []byte {
	raw := p.events[kind]
	size := len(raw)
	var name, renamed []byte
	if variant != "" {
		name = []byte(")." + letters(kind) + "Step")
		renamed = []byte(")." + letters(kind) + "V" + variant + "Step")
		size += bytes.Count(raw, name) * (len(renamed) - len(name))
	}
	dst = fmt.Appendf(dst, `{"event_id":%q,"sent_at":%q,"sdk":{"name":"sentry.go","version":%q}}`+"\n",
		eventID, time.Now().UTC().Format(time.RFC3339Nano), sentry.SDKVersion)
	dst = fmt.Appendf(dst, `{"type":"event","length":%d}`+"\n", size)
	// The SDK's event carries its own event_id; replace it so that every post is a new event.
	i := bytes.Index(raw, []byte(`"event_id":"`)) + len(`"event_id":"`)
	dst = appendReplaced(dst, raw[:i], name, renamed)
	dst = append(dst, eventID...)
	dst = appendReplaced(dst, raw[i+32:], name, renamed)
	return append(dst, '\n')
}

// appendReplaced appends src to dst with every from replaced by to; an empty from replaces
// nothing.
func appendReplaced(dst, src, from, to []byte) []byte {
	for len(from) > 0 {
		j := bytes.Index(src, from)
		if j < 0 {
			break
		}
		dst = append(dst, src[:j]...)
		dst = append(dst, to...)
		src = src[j+len(from):]
	}
	return append(dst, src...)
}

// letters writes n in base 26 with the letters a to z.
func letters(n int) string {
	b := []byte{byte('a' + n%26)}
	for n /= 26; n > 0; n /= 26 {
		b = append(b, byte('a'+n%26))
	}
	return string(b)
}

func postEnvelope(c *http.Client, url, auth string, body []byte) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-sentry-envelope")
	if auth != "" {
		req.Header.Set("X-Sentry-Auth", auth)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	reply, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	latency := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("POST %s = %d %s, want 200", url, resp.StatusCode, reply)
	}
	return latency, err
}

// benchErrors sends the load to url and reports; check, when set, verifies the store after.
func benchErrors(b *testing.B, url, auth string, p *errorPayloads, check func(newIssues int)) {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS is the process's since it started: reset it: %v", err)
	}
	var (
		elapsed   time.Duration
		latencies []time.Duration
		newIssues int
		iteration uint64
	)
	cpuBefore := cpuTime(b)
	for b.Loop() {
		iteration++
		lat := make([][]time.Duration, errorSenders)
		news := make([]int, errorSenders)
		errs := make([]error, errorSenders)
		var wg sync.WaitGroup
		start := time.Now()
		for s := range errorSenders {
			wg.Go(func() {
				sender, err := dialSender(url, sdkHeaders(auth)...)
				if err != nil {
					errs[s] = err
					return
				}
				defer sender.close()
				rng := rand.New(rand.NewPCG(iteration, uint64(s)))
				var body []byte
				for range errorPosts / errorSenders {
					variant := ""
					if rng.IntN(100) >= 80 { // a new issue, named by iteration, sender and count
						news[s]++
						variant = letters(int(iteration)) + "X" + letters(s) + "X" + letters(news[s])
					}
					body = p.appendEnvelope(body[:0], rng.IntN(errorIssues), variant, errtrack.NewEventID())
					status, reply, d, err := sender.post(body)
					if err == nil && status != http.StatusOK {
						err = fmt.Errorf("POST %s = %d %s, want 200", url, status, reply)
					}
					if err != nil {
						errs[s] = err
						return
					}
					lat[s] = append(lat[s], d)
				}
			})
		}
		wg.Wait()
		elapsed += time.Since(start)
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		for s := range errorSenders {
			latencies = append(latencies, lat[s]...)
			newIssues += news[s]
		}
	}
	cpu := cpuTime(b) - cpuBefore
	if check != nil {
		check(newIssues)
	}
	b.ReportMetric(float64(p.size)/1024, "KiB/event")
	reportLoad(b, "event", latencies, elapsed, cpu)
}

// sdkHeaders are the headers sentry-go's transport sends, and the one net/http adds under it.
func sdkHeaders(auth string) []string {
	h := []string{"User-Agent: sentry.go/" + sentry.SDKVersion, "Content-Type: application/x-sentry-envelope", "Accept-Encoding: gzip"}
	if auth != "" {
		h = append(h, "X-Sentry-Auth: "+auth)
	}
	return h
}
