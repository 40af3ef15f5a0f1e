package notify_test

import (
	"errors"
	"path"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/notify"
)

func TestNewRouterValidates(t *testing.T) {
	channels := []string{"ops", "releases"}
	tests := []struct {
		name string
		subs []notify.Subscription
		// wantIs are the errors the result must wrap; none means NewRouter must succeed.
		wantIs []error
	}{
		{name: "no subscriptions"},
		{
			name: "every filter set",
			subs: []notify.Subscription{{
				Channels: []string{"ops", "releases"}, On: []string{"deploy.failed", "deploy.*", "*", "health.*"},
				Environments: []string{"dev-*", "prod"}, Namespaces: []string{"shop-[a-z]"}, Applications: []string{"?op"},
			}},
		},
		{
			name:   "unknown channel",
			subs:   []notify.Subscription{{Channels: []string{"ops", "nope"}}},
			wantIs: []error{notify.ErrInvalid},
		},
		{
			name:   "unknown channel in a later subscription",
			subs:   []notify.Subscription{{Channels: []string{"ops"}}, {Channels: []string{"Ops"}}},
			wantIs: []error{notify.ErrInvalid},
		},
		{
			name:   "no channel",
			subs:   []notify.Subscription{{On: []string{"deploy.failed"}}},
			wantIs: []error{notify.ErrInvalid},
		},
		{
			name:   "on without a dot",
			subs:   []notify.Subscription{{Channels: []string{"ops"}, On: []string{"deploy"}}},
			wantIs: []error{notify.ErrInvalid},
		},
		{
			name:   "on in capitals",
			subs:   []notify.Subscription{{Channels: []string{"ops"}, On: []string{"Deploy.Failed"}}},
			wantIs: []error{notify.ErrInvalid},
		},
		{
			name:   "on with a space",
			subs:   []notify.Subscription{{Channels: []string{"ops"}, On: []string{"deploy failed"}}},
			wantIs: []error{notify.ErrInvalid},
		},
		{
			name:   "empty on entry",
			subs:   []notify.Subscription{{Channels: []string{"ops"}, On: []string{""}}},
			wantIs: []error{notify.ErrInvalid},
		},
		{
			name:   "bad environment glob",
			subs:   []notify.Subscription{{Channels: []string{"ops"}, Environments: []string{"dev-["}}},
			wantIs: []error{notify.ErrInvalid, path.ErrBadPattern},
		},
		{
			name:   "bad namespace glob",
			subs:   []notify.Subscription{{Channels: []string{"ops"}, Namespaces: []string{`shop\`}}},
			wantIs: []error{notify.ErrInvalid, path.ErrBadPattern},
		},
		{
			name:   "bad application glob",
			subs:   []notify.Subscription{{Channels: []string{"ops"}, Applications: []string{"[]a]"}}},
			wantIs: []error{notify.ErrInvalid, path.ErrBadPattern},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := notify.NewRouter(channels, tt.subs)
			if len(tt.wantIs) == 0 {
				if err != nil {
					t.Fatalf("NewRouter: %v", err)
				}
				if r == nil {
					t.Fatal("NewRouter returned a nil router and no error")
				}
				return
			}
			if err == nil {
				t.Fatal("NewRouter succeeded, want an error")
			}
			for _, want := range tt.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("NewRouter error %v does not wrap %v", err, want)
				}
			}
		})
	}
}

func TestRouterKnown(t *testing.T) {
	channels := []string{"ops", "releases"}
	r, err := notify.NewRouter(channels, nil)
	if err != nil {
		t.Fatal(err)
	}
	channels[0] = "changed" // the router keeps its own copy
	got := map[string]bool{}
	for _, c := range []string{"ops", "releases", "changed", ""} {
		got[c] = r.Known(c)
	}
	want := map[string]bool{"ops": true, "releases": true, "changed": false, "": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Known (-want +got):\n%s", diff)
	}
}

func TestRoute(t *testing.T) {
	channels := []string{"ops", "releases", "dev", "audit", "shop"}
	event := func(typ, env, ns, app string) notify.Event {
		return notify.Event{
			Type: typ, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Summary: "s",
			Environment: env, Namespace: ns, Application: app, ReleaseID: 7,
		}
	}
	prod := func(typ string) notify.Event { return event(typ, "production", "shop", "web") }
	tests := []struct {
		name        string
		subs        []notify.Subscription
		event       notify.Event
		app         []notify.AppSubscription
		want        []string
		wantUnknown []string
	}{
		{
			name:  "nothing subscribed",
			event: prod(notify.EventDeployFailed),
		},
		{
			name:  "empty on takes a default event",
			subs:  []notify.Subscription{{Channels: []string{"ops"}}},
			event: prod(notify.EventDeploySucceeded),
			want:  []string{"ops"},
		},
		{
			name:  "empty on leaves out deploy.started",
			subs:  []notify.Subscription{{Channels: []string{"ops"}}},
			event: prod(notify.EventDeployStarted),
		},
		{
			name:  "empty on leaves out other subsystems' events",
			subs:  []notify.Subscription{{Channels: []string{"ops"}}},
			event: prod("alert.firing"),
		},
		{
			name:  "empty on leaves out the test event",
			subs:  []notify.Subscription{{Channels: []string{"ops"}}},
			event: prod(notify.EventTest),
		},
		{
			name:  "on exact type matches",
			subs:  []notify.Subscription{{Channels: []string{"ops"}, On: []string{"deploy.started"}}},
			event: prod(notify.EventDeployStarted),
			want:  []string{"ops"},
		},
		{
			name:  "on exact type does not match another",
			subs:  []notify.Subscription{{Channels: []string{"ops"}, On: []string{"deploy.failed"}}},
			event: prod(notify.EventDeploySucceeded),
		},
		{
			name:  "on pattern matches its prefix",
			subs:  []notify.Subscription{{Channels: []string{"ops"}, On: []string{"deploy.*"}}},
			event: prod(notify.EventDeployStarted),
			want:  []string{"ops"},
		},
		{
			name:  "on pattern does not match another prefix",
			subs:  []notify.Subscription{{Channels: []string{"ops"}, On: []string{"deploy.*"}}},
			event: prod(notify.EventHealthDegraded),
		},
		{
			name:  "on suffix pattern",
			subs:  []notify.Subscription{{Channels: []string{"ops"}, On: []string{"*.failed"}}},
			event: prod(notify.EventDeployFailed),
			want:  []string{"ops"},
		},
		{
			name:  "on star matches every type",
			subs:  []notify.Subscription{{Channels: []string{"ops"}, On: []string{"*"}}},
			event: prod("alert.firing"),
			want:  []string{"ops"},
		},
		{
			name:  "on star matches deploy.started",
			subs:  []notify.Subscription{{Channels: []string{"ops"}, On: []string{"*"}}},
			event: prod(notify.EventDeployStarted),
			want:  []string{"ops"},
		},
		{
			name:  "environment glob matches",
			subs:  []notify.Subscription{{Channels: []string{"dev"}, Environments: []string{"dev-*"}}},
			event: event(notify.EventDeployFailed, "dev-alice", "shop", "web"),
			want:  []string{"dev"},
		},
		{
			name:  "environment glob does not match",
			subs:  []notify.Subscription{{Channels: []string{"dev"}, Environments: []string{"dev-*"}}},
			event: prod(notify.EventDeployFailed),
		},
		{
			name:  "environment filter does not match an event without environment",
			subs:  []notify.Subscription{{Channels: []string{"dev"}, Environments: []string{"dev-*"}}},
			event: event(notify.EventDeployFailed, "", "shop", "web"),
		},
		{
			name:  "any of several environments",
			subs:  []notify.Subscription{{Channels: []string{"ops"}, Environments: []string{"staging", "prod*"}}},
			event: prod(notify.EventDeployFailed),
			want:  []string{"ops"},
		},
		{
			name:  "namespace glob matches",
			subs:  []notify.Subscription{{Channels: []string{"shop"}, Namespaces: []string{"sho?"}}},
			event: prod(notify.EventDeployFailed),
			want:  []string{"shop"},
		},
		{
			name:  "namespace glob does not match",
			subs:  []notify.Subscription{{Channels: []string{"shop"}, Namespaces: []string{"billing-*"}}},
			event: prod(notify.EventDeployFailed),
		},
		{
			name:  "application glob matches",
			subs:  []notify.Subscription{{Channels: []string{"shop"}, Applications: []string{"[uvw]eb"}}},
			event: prod(notify.EventDeployFailed),
			want:  []string{"shop"},
		},
		{
			name:  "application glob does not match",
			subs:  []notify.Subscription{{Channels: []string{"shop"}, Applications: []string{"api"}}},
			event: prod(notify.EventDeployFailed),
		},
		{
			name: "all filters must match",
			subs: []notify.Subscription{
				{Channels: []string{"ops"}, On: []string{"deploy.failed"}, Environments: []string{"production"}, Namespaces: []string{"shop"}, Applications: []string{"api"}},
				{Channels: []string{"dev"}, On: []string{"deploy.failed"}, Environments: []string{"production"}, Namespaces: []string{"shop"}, Applications: []string{"web"}},
			},
			event: prod(notify.EventDeployFailed),
			want:  []string{"dev"},
		},
		{
			name: "a channel chosen twice appears once, in configuration order",
			subs: []notify.Subscription{
				{Channels: []string{"releases", "ops"}},
				{Channels: []string{"audit", "ops", "releases"}, On: []string{"deploy.*"}},
				{Channels: []string{"dev"}, Environments: []string{"dev-*"}},
				{Channels: []string{"shop", "audit"}, Applications: []string{"web"}},
			},
			event: prod(notify.EventDeployFailed),
			want:  []string{"releases", "ops", "audit", "shop"},
		},
		{
			name:  "application subscription adds a channel after the global ones",
			subs:  []notify.Subscription{{Channels: []string{"ops"}}},
			event: prod(notify.EventDeployFailed),
			app:   []notify.AppSubscription{{Channel: "shop"}},
			want:  []string{"ops", "shop"},
		},
		{
			name:  "application subscription without on leaves out deploy.started",
			event: prod(notify.EventDeployStarted),
			app:   []notify.AppSubscription{{Channel: "shop"}},
		},
		{
			name:  "application subscription with on",
			event: prod(notify.EventDeployStarted),
			app: []notify.AppSubscription{
				{Channel: "shop", On: []string{"deploy.started"}},
				{Channel: "dev", On: []string{"health.*"}},
				{Channel: "audit", On: []string{"*"}},
			},
			want: []string{"shop", "audit"},
		},
		{
			name:  "application subscription ignores the global filters",
			subs:  []notify.Subscription{{Channels: []string{"ops"}, Applications: []string{"api"}}},
			event: prod(notify.EventDeployFailed),
			app:   []notify.AppSubscription{{Channel: "ops"}},
			want:  []string{"ops"},
		},
		{
			name:  "application channel already chosen appears once",
			subs:  []notify.Subscription{{Channels: []string{"ops", "shop"}}},
			event: prod(notify.EventDeployFailed),
			app:   []notify.AppSubscription{{Channel: "dev"}, {Channel: "shop"}, {Channel: "dev", On: []string{"*"}}},
			want:  []string{"ops", "shop", "dev"},
		},
		{
			name:        "unknown application channels are reported once each",
			subs:        []notify.Subscription{{Channels: []string{"ops"}}},
			event:       prod(notify.EventDeployFailed),
			app:         []notify.AppSubscription{{Channel: "nope"}, {Channel: "shop"}, {Channel: "gone"}, {Channel: "nope", On: []string{"*"}}},
			want:        []string{"ops", "shop"},
			wantUnknown: []string{"nope", "gone"},
		},
		{
			name:        "unknown application channels are reported when the event does not match",
			event:       prod(notify.EventDeployStarted),
			app:         []notify.AppSubscription{{Channel: "nope", On: []string{"health.*"}}},
			wantUnknown: []string{"nope"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := notify.NewRouter(channels, tt.subs)
			if err != nil {
				t.Fatalf("NewRouter: %v", err)
			}
			notes, unknown := r.Route(tt.event, tt.app)
			var want []notify.Notification
			for _, c := range tt.want {
				want = append(want, notify.Notification{Channel: c, Event: tt.event})
			}
			if diff := cmp.Diff(want, notes); diff != "" {
				t.Errorf("notifications (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantUnknown, unknown); diff != "" {
				t.Errorf("unknown channels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultEvents(t *testing.T) {
	want := []string{
		notify.EventDeploySucceeded, notify.EventDeployFailed, notify.EventDeployRollback,
		notify.EventHealthDegraded, notify.EventHealthRecovered, notify.EventSecretRotated,
		notify.EventAlertRaised, notify.EventAlertEscalated, notify.EventAlertReopened, notify.EventAlertClosed,
		notify.EventErrorNew, notify.EventErrorRegressed, notify.EventErrorSpike,
	}
	if diff := cmp.Diff(want, notify.DefaultEvents); diff != "" {
		t.Errorf("DefaultEvents (-want +got):\n%s", diff)
	}
}
