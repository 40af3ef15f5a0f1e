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

# The panel's admin; a real install reads it from a mounted Secret (panel.admin_password_file)
# or lets Ferry generate one into the data directory.
admin_password=ferry-demo-password
printf '%s\n' "$admin_password" >"$dir/admin-password"
chmod 600 "$dir/admin-password"
bin/ferry server --listen "$listen" --data-dir "$dir/data" --kubeconfig "$dir/kubeconfig" \
  --panel-admin-password-file "$dir/admin-password" >"$dir/ferry.log" 2>&1 &
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

# An API key for the demo's own calls, as `ferry apikey create` makes one for the CLI.
api_key=$(bin/ferry apikey create demo --scope admin --data-dir "$dir/data")

# A real Alertmanager, whose webhook receiver is Ferry, fires an alert about the sample app:
# its namespace and app labels attach it to the app's current release.
am_port=${FERRY_DEMO_ALERTMANAGER_PORT:-19093}
alertmanager=$(hack/alertmanager.sh)
mkdir -p "$dir/alertmanager"
cat >"$dir/alertmanager/alertmanager.yml" <<AM
route:
  receiver: ferry
  group_wait: 1s
  group_interval: 10s
  repeat_interval: 1h
receivers:
  - name: ferry
    webhook_configs:
      - url: http://$listen/api/v1/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Key
            credentials: $api_key
AM
"$alertmanager" --config.file="$dir/alertmanager/alertmanager.yml" --storage.path="$dir/alertmanager" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$dir/alertmanager.log" 2>&1 &
pids+=($!)
until curl -fsS "http://127.0.0.1:$am_port/-/ready" >/dev/null 2>&1; do
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "demo: alertmanager did not start:"; tail -20 "$dir/alertmanager.log"; exit 1; }
  sleep 0.3
done
curl -fsS -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$am_port/api/v2/alerts" -d '[{
  "labels": {"alertname": "HelloErrorRate", "severity": "major", "namespace": "demo", "app": "hello",
             "environment": "demo", "instance": "hello.demo.svc", "job": "hello"},
  "annotations": {"summary": "5xx ratio above 5% for 5 minutes", "runbook": "https://runbooks.example/hello"}}]' >/dev/null
echo "demo: Alertmanager (http://127.0.0.1:$am_port) fired HelloErrorRate at Ferry"

# The sample app's errors, sent by the official Sentry SDK for Go with the release and
# environment Ferry injected into its Deployment (kwok runs no containers, so a local
# process stands in for the app).
dsn=$(bin/ferry project create hello --server "http://$listen" --api-key "$api_key")
env_of() {
  $kubectl get deployment -n demo -o jsonpath="{.items[0].spec.template.spec.containers[0].env[?(@.name==\"$1\")].value}"
}
go build -o bin/demo-app ./hack/demo-app
SENTRY_DSN=$dsn SENTRY_RELEASE=$(env_of SENTRY_RELEASE) SENTRY_ENVIRONMENT=$(env_of SENTRY_ENVIRONMENT) bin/demo-app
echo "demo: the sample app reported its errors with sentry-go as $(env_of SENTRY_RELEASE)"
until curl -fsS -H "Authorization: Key $api_key" "http://$listen/api/alerts" | grep -q HelloErrorRate; do
  sleep 0.5
done
release_id=$(curl -fsS -H "Authorization: Key $api_key" "http://$listen/api/v1/releases?application=hello&limit=1" |
  sed -n 's/^{"releases":\[{"id":\([0-9]*\).*/\1/p')

cat <<MSG

Ferry is running.
  Panel:          http://$listen/   (user admin, password $admin_password)
  Timeline:       http://$listen/releases/$release_id   (the deploy, the alert and the error, in order)
  API:            curl -H "Authorization: Key $api_key" http://$listen/api/v1/releases
  Cluster:        export KUBECONFIG=$dir/kubeconfig
  kubectl:        $FERRY_TESTBIN/kubectl get applications,deployments -A
  Sample repo:    $dir/git/work (commit and \`git push $repo main\` to deploy)
  Alertmanager:   http://127.0.0.1:$am_port
  Sentry DSN:     $dsn
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
