package delivery

import (
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestSettledOnApply: the objects the wait after a sync does not read back are ones kstatus
// calls Current as they are applied; a load balancer, a Deployment or a Job is still read.
func TestSettledOnApply(t *testing.T) {
	for _, tc := range []struct {
		manifest string
		settled  bool
	}{
		{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns}\ndata: {a: b}", true},
		{"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ns}\nstringData: {a: b}", true},
		{"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa, namespace: ns}", true},
		{"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: ns}\nrules: []", true},
		{"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: crb}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}", true},
		{"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ns}\nspec: {ports: [{port: 80}]}", true},
		{"apiVersion: v1\nkind: Service\nmetadata: {name: np, namespace: ns}\nspec: {type: NodePort, ports: [{port: 80}]}", true},
		{"apiVersion: v1\nkind: Service\nmetadata: {name: lb, namespace: ns}\nspec: {type: LoadBalancer, ports: [{port: 80}]}", false},
		{"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: ns, generation: 1}\nspec: {replicas: 1}", false},
		{"apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: ns, generation: 1}\nspec: {}", false},
		{"apiVersion: example.com/v1\nkind: ConfigMap\nmetadata: {name: other-group, namespace: ns}", false},
	} {
		js, err := yaml.YAMLToJSON([]byte(tc.manifest))
		if err != nil {
			t.Fatal(err)
		}
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(js); err != nil {
			t.Fatal(err)
		}
		id := object.UnstructuredToObjMetadata(o)
		if got := settledOnApply([]*unstructured.Unstructured{o})[id]; got != tc.settled {
			t.Errorf("%s: settled = %v, want %v", id, got, tc.settled)
		}
		// What the wait would have read: the object as applied, before any controller wrote
		// a status. kstatus must call every settled one Current (the rule may leave out kinds
		// kstatus would also call Current, such as another group's ConfigMap: a read too many,
		// never a health skipped).
		res, err := status.Compute(o)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if current := res.Status == status.CurrentStatus; tc.settled && !current {
			t.Errorf("%s: settled, but kstatus says %s (%s)", id, res.Status, res.Message)
		}
	}
	if got := toRead(object.ObjMetadataSet{{Name: "a"}, {Name: "b"}}, map[object.ObjMetadata]bool{{Name: "a"}: true}); len(got) != 1 || got[0].Name != "b" {
		t.Errorf("toRead = %v, want only b", got)
	}
}

// TestSettleEnds: the wait's pause after a change ends at its limit while changes keep
// coming, as a workload whose status never stops changing makes them.
func TestSettleEnds(t *testing.T) {
	changed := make(chan struct{}, 1)
	stop := make(chan struct{})
	storm := make(chan struct{})
	go func() {
		defer close(storm)
		for {
			select {
			case <-stop:
				return
			case changed <- struct{}{}:
			default:
			}
			time.Sleep(time.Millisecond)
		}
	}()
	settle(t.Context(), changed) // hangs if a change restarted the whole wait
	close(stop)
	<-storm
}
