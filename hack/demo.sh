#!/usr/bin/env bash
# make demo: a local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler,
# kwok as fake kubelets) and `ferry server` on SQLite, both on 127.0.0.1. Ctrl-C stops everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.demo}
listen=${FERRY_LISTEN:-127.0.0.1:8080}
mkdir -p "$dir"
cd "$root"

export FERRY_TESTBIN=${FERRY_TESTBIN:-$(hack/testbin.sh)}
go build -o bin/controlplane ./hack/controlplane

pids=()
stop() {
  trap - EXIT INT TERM
  echo
  echo "demo: stopping"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

rm -f "$dir/kubeconfig"
bin/controlplane -kubeconfig "$dir/kubeconfig" >"$dir/controlplane.log" 2>&1 &
pids+=($!)
echo "demo: starting the control plane (log: $dir/controlplane.log)"
until grep -q '^KUBECONFIG=' "$dir/controlplane.log" 2>/dev/null; do
  kill -0 "${pids[0]}" 2>/dev/null || { echo "demo: the control plane did not start:"; tail -20 "$dir/controlplane.log"; exit 1; }
  sleep 0.5
done

bin/ferry server --listen "$listen" --data-dir "$dir/data" --kubeconfig "$dir/kubeconfig" \
  >"$dir/ferry.log" 2>&1 &
pids+=($!)
echo "demo: starting ferry server (log: $dir/ferry.log)"
until curl -fsS "http://$listen/readyz" >/dev/null 2>&1; do
  kill -0 "${pids[1]}" 2>/dev/null || { echo "demo: ferry server did not start:"; tail -20 "$dir/ferry.log"; exit 1; }
  sleep 0.5
done

cat <<MSG

Ferry is running.
  API:            http://$listen/api/v1/releases   (also /healthz, /readyz, /metrics)
  Cluster:        export KUBECONFIG=$dir/kubeconfig
  kubectl:        $FERRY_TESTBIN/kubectl get nodes
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
