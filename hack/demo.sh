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

# A local git repository with the sample app, and an Application that tracks it.
kubectl="$FERRY_TESTBIN/kubectl --kubeconfig $dir/kubeconfig"
repo=$dir/git/sample.git
rm -rf "$dir/git" && mkdir -p "$dir/git/work"
git init -q --bare -b main "$repo"
cp examples/sample-app/*.yaml "$dir/git/work/"
(
  cd "$dir/git/work"
  git init -q -b main
  git add .
  git -c user.name="Ferry Demo" -c user.email=demo@ferry.dev commit -qm "Sample app: hello"
  git push -q "$repo" main
)
# Ferry refuses file:// sources (an Application must not read the server's disk), so serve the
# repository with git's own daemon, read-only, on loopback.
git_port=${FERRY_DEMO_GIT_PORT:-19418}
git daemon --reuseaddr --listen=127.0.0.1 --port="$git_port" --base-path="$dir/git" --export-all \
  "$dir/git" >"$dir/git-daemon.log" 2>&1 &
pids+=($!)
repo_url=git://127.0.0.1:$git_port/sample.git
until git ls-remote "$repo_url" >/dev/null 2>&1; do
  kill -0 "${pids[2]}" 2>/dev/null || { echo "demo: git daemon did not start:"; cat "$dir/git-daemon.log"; exit 1; }
  sleep 0.2
done
$kubectl apply -f - >/dev/null <<APP
apiVersion: ferry.dev/v1alpha1
kind: Application
metadata:
  name: hello
  namespace: default
spec:
  source:
    repoURL: $repo_url
    revision: main
  destination:
    namespace: demo
    createNamespace: true
  environment: demo
  syncPolicy:
    automated: true
    prune: true
    selfHeal: true
    interval: 30s
APP
echo "demo: syncing the sample app from $repo_url"
if ! $kubectl wait --for=condition=Ready application/hello -n default --timeout=180s >/dev/null; then
  echo "demo: the sample app did not become Ready:"
  $kubectl get application hello -n default -o yaml | sed -n '/^status:/,$p'
  exit 1
fi
$kubectl get applications -A
echo

cat <<MSG

Ferry is running.
  API:            http://$listen/api/v1/releases   (also /healthz, /readyz, /metrics)
  Cluster:        export KUBECONFIG=$dir/kubeconfig
  kubectl:        $FERRY_TESTBIN/kubectl get applications,deployments -A
  Sample repo:    $dir/git/work (commit and \`git push $repo main\` to deploy)
  Releases:       curl http://$listen/api/v1/releases
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
