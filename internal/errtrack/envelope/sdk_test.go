package envelope_test

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/errtrack/envelope"
)

// testKey is a public key of the shape Sentry issues.
const testKey = "0123456789abcdef0123456789abcdef"

// sent is one request as an SDK sent it.
type sent struct {
	method string
	target string // path and query
	header http.Header
	body   []byte
}

// request rebuilds the request, so that each test reads a fresh body.
func (s sent) request() *http.Request {
	r := httptest.NewRequest(s.method, s.target, bytes.NewReader(s.body))
	r.Header = s.header.Clone()
	return r
}

// captureSDK runs send against the real sentry-go SDK, configured as an application
// would configure it with a DSN that points at a local server, and returns every request
// the SDK made.
func captureSDK(t *testing.T, opts sentry.ClientOptions, send func(*sentry.Hub)) []sent {
	t.Helper()
	var (
		mu   sync.Mutex
		reqs []sent
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		reqs = append(reqs, sent{method: r.Method, target: r.URL.RequestURI(), header: r.Header.Clone(), body: b})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()

	opts.Dsn = fmt.Sprintf("http://%s@%s/42", testKey, srv.Listener.Addr())
	client, err := sentry.NewClient(opts)
	if err != nil {
		t.Fatalf("sentry.NewClient: %v", err)
	}
	hub := sentry.NewHub(client, sentry.NewScope())
	send(hub)
	if !hub.Flush(10 * time.Second) {
		t.Fatal("sentry-go did not flush within 10s")
	}
	client.Close()

	mu.Lock()
	defer mu.Unlock()
	return reqs
}

// sdkEvent is the part of an event the tests look at.
type sdkEvent struct {
	EventID     string `json:"event_id"`
	Level       string `json:"level"`
	Message     string `json:"message"`
	Release     string `json:"release"`
	Environment string `json:"environment"`
	Exception   []struct {
		Type       string `json:"type"`
		Value      string `json:"value"`
		Stacktrace *struct {
			Frames []struct {
				Function string `json:"function"`
			} `json:"frames"`
		} `json:"stacktrace"`
	} `json:"exception"`
}

// eventRequest returns the one request that carries an event item.
func eventRequest(t *testing.T, reqs []sent) sent {
	t.Helper()
	var found []sent
	for _, s := range reqs {
		if bytes.Contains(s.body, []byte(`"type":"event"`)) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("got %d requests with an event item among %d requests, want 1", len(found), len(reqs))
	}
	return found[0]
}

func TestSentryGoSDK(t *testing.T) {
	opts := sentry.ClientOptions{Release: "shop@1a2b3c4", Environment: "production"}
	tests := []struct {
		name  string
		send  func(*sentry.Hub) *sentry.EventID
		check func(t *testing.T, ev sdkEvent)
	}{
		{
			name: "exception",
			send: func(h *sentry.Hub) *sentry.EventID {
				return h.CaptureException(fmt.Errorf("charge order 17: %w", errors.New("card declined")))
			},
			check: func(t *testing.T, ev sdkEvent) {
				if len(ev.Exception) == 0 {
					t.Fatal("event has no exception")
				}
				last := ev.Exception[len(ev.Exception)-1]
				if last.Value != "charge order 17: card declined" {
					t.Errorf("exception value = %q", last.Value)
				}
				if last.Stacktrace == nil || len(last.Stacktrace.Frames) == 0 {
					t.Error("exception has no stack frames")
				}
			},
		},
		{
			name: "message",
			send: func(h *sentry.Hub) *sentry.EventID { return h.CaptureMessage("disk almost full") },
			check: func(t *testing.T, ev sdkEvent) {
				if ev.Message != "disk almost full" {
					t.Errorf("message = %q", ev.Message)
				}
			},
		},
		{
			name: "panic",
			send: func(h *sentry.Hub) (id *sentry.EventID) {
				defer func() {
					if r := recover(); r != nil {
						id = h.Recover(r)
					}
				}()
				orders := []int{17, 18}
				i := len(orders)
				return h.CaptureMessage(fmt.Sprint(orders[i])) // a real runtime panic
			},
			check: func(t *testing.T, ev sdkEvent) {
				if len(ev.Exception) == 0 || !strings.Contains(ev.Exception[0].Value, "index out of range [2] with length 2") {
					t.Errorf("exception = %+v, want the index panic", ev.Exception)
				}
				if ev.Level != "fatal" {
					t.Errorf("level = %q, want fatal", ev.Level)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var id *sentry.EventID
			reqs := captureSDK(t, opts, func(h *sentry.Hub) { id = tt.send(h) })
			if id == nil {
				t.Fatal("the SDK returned no event ID")
			}
			s := eventRequest(t, reqs)
			if s.target != "/api/42/envelope/" {
				t.Errorf("SDK posted to %q", s.target)
			}

			auth, err := envelope.ParseAuth(s.request())
			if err != nil {
				t.Fatalf("ParseAuth: %v", err)
			}
			if auth.PublicKey != testKey || auth.Source != envelope.SourceHeader || auth.Version != "7" ||
				!strings.HasPrefix(auth.Client, "sentry.go/") {
				t.Errorf("ParseAuth = %+v", auth)
			}

			body, err := envelope.Body(s.request(), envelope.DefaultLimits())
			if err != nil {
				t.Fatalf("Body: %v", err)
			}
			if !bytes.Equal(body, s.body) {
				t.Fatal("Body changed an identity body")
			}

			env, err := envelope.Parse(body, envelope.DefaultLimits())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if env.Header.EventID != string(*id) {
				t.Errorf("header event_id = %q, SDK said %q", env.Header.EventID, *id)
			}
			if env.Header.SDK.Name != "sentry.go" || env.Header.SentAt.IsZero() {
				t.Errorf("header sdk = %+v, sent_at = %v", env.Header.SDK, env.Header.SentAt)
			}
			dsnAuth, err := env.Header.Auth()
			if err != nil {
				t.Fatalf("Header.Auth: %v", err)
			}
			if want := (envelope.Auth{PublicKey: testKey, ProjectID: "42", Client: dsnAuth.Client, Source: envelope.SourceDSN}); dsnAuth != want {
				t.Errorf("Header.Auth = %+v, want %+v", dsnAuth, want)
			}

			item, ok := env.Event()
			if !ok {
				t.Fatalf("no event item among %d items", len(env.Items))
			}
			var ev sdkEvent
			if err := json.Unmarshal(item.Payload, &ev); err != nil {
				t.Fatalf("event payload does not decode: %v", err)
			}
			if ev.EventID != string(*id) || ev.Release != opts.Release || ev.Environment != opts.Environment {
				t.Errorf("event id/release/environment = %q/%q/%q", ev.EventID, ev.Release, ev.Environment)
			}
			tt.check(t, ev)

			// The legacy store endpoint takes the same event, plain or as old SDKs
			// encoded it.
			for _, storeBody := range [][]byte{item.Payload, legacyEncode(t, item.Payload)} {
				got, err := envelope.ParseStore(storeBody, envelope.DefaultLimits())
				if err != nil {
					t.Fatalf("ParseStore: %v", err)
				}
				if !bytes.Equal(got, item.Payload) {
					t.Error("ParseStore changed the event")
				}
			}
		})
	}
}

// TestSentryGoSDKCompressed sends the SDK's envelope in every Content-Encoding the
// ingest endpoint accepts (sentry-go sends identity; other SDKs compress).
func TestSentryGoSDKCompressed(t *testing.T) {
	reqs := captureSDK(t, sentry.ClientOptions{}, func(h *sentry.Hub) {
		h.CaptureException(errors.New("compressed"))
	})
	s := eventRequest(t, reqs)
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			r := s.request()
			r.Body = io.NopCloser(bytes.NewReader(enc.encode(t, s.body)))
			r.Header.Set("Content-Encoding", enc.header)
			body, err := envelope.Body(r, envelope.DefaultLimits())
			if err != nil {
				t.Fatalf("Body: %v", err)
			}
			if diff := cmp.Diff(string(s.body), string(body)); diff != "" {
				t.Fatalf("Body (-want +got):\n%s", diff)
			}
			env, err := envelope.Parse(body, envelope.DefaultLimits())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if _, ok := env.Event(); !ok {
				t.Error("no event item")
			}
		})
	}
}

// legacyEncode encodes an event as Sentry's oldest SDKs posted it to the store
// endpoint: zlib, then base64.
func legacyEncode(t *testing.T, event []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	if _, err := zw.Write(event); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(z.Bytes()))
}
