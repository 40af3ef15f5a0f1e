package incident

import (
	"slices"
	"strings"
)

// appLabels are the labels that name the workload an alert is about, best first: the
// conventional app label, and the Kubernetes recommended label as Prometheus spells it (dots
// and slashes become underscores in label names).
var appLabels = []string{"app", "app_kubernetes_io_name", "app_kubernetes_io_instance", "application"}

// LinkCandidates lists the Applications and environments an alert may point at, best first:
// its app labels (from tags "k=v", as the Alertmanager mapping writes them, or attributes),
// then its services; its environment, then its namespace label (an Application's environment
// defaults to its namespace). The store attaches the alert to the latest succeeded release of
// the first pair that has one.
func LinkCandidates(a Alert) (apps, environments []string) {
	labels := map[string]string{}
	for _, t := range a.Tags {
		if k, v, ok := strings.Cut(t, "="); ok {
			labels[k] = v
		}
	}
	for k, v := range a.Attributes {
		if s, ok := v.(string); ok {
			if _, set := labels[k]; !set {
				labels[k] = s
			}
		}
	}
	add := func(list []string, v string) []string {
		if v != "" && !slices.Contains(list, v) {
			return append(list, v)
		}
		return list
	}
	for _, l := range appLabels {
		apps = add(apps, labels[l])
	}
	for _, s := range a.Service {
		apps = add(apps, s)
	}
	environments = add(environments, a.Environment)
	environments = add(environments, labels["namespace"])
	return apps, environments
}
