# Ferry's build. `make demo` runs Ferry locally; `make test` is exactly what CI runs.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/ferrycd/ferry/internal/buildinfo.Version=$(VERSION) \
           -X github.com/ferrycd/ferry/internal/buildinfo.Commit=$(COMMIT)

# Heavy, version-keyed tools and test binaries live outside the repository so clean clones reuse them.
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ferry
GOLANGCI_LINT_VERSION := v2.15.0
GOVULNCHECK_VERSION   := v1.9.0
CONTROLLER_GEN_VERSION := v0.23.0
CRD_REF_DOCS_VERSION   := v0.3.0
GOLANGCI_LINT := $(CACHE)/tools/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
GOVULNCHECK   := $(CACHE)/tools/govulncheck-$(GOVULNCHECK_VERSION)/govulncheck
CONTROLLER_GEN := $(CACHE)/tools/controller-gen-$(CONTROLLER_GEN_VERSION)/controller-gen
CRD_REF_DOCS   := $(CACHE)/tools/crd-ref-docs-$(CRD_REF_DOCS_VERSION)/crd-ref-docs

DEMO_DIR ?= $(CURDIR)/.demo

.PHONY: build
build: ## Build bin/ferry and bin/ferry-exec (ferry exec alone, for injected Pods).
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/ferry ./cmd/ferry
	go build -trimpath -ldflags '-s -w' -o bin/ferry-exec ./cmd/ferry-exec

.PHONY: testbin
testbin: ## Build etcd, the Kubernetes control plane, kubectl, kwok and Vault into $(CACHE)/testbin (once); install Alertmanager, Chromium and @sentry/node.
	@hack/testbin.sh >/dev/null
	@hack/testbin-vault.sh >/dev/null
	@hack/alertmanager.sh >/dev/null
	@hack/sentry-node.sh >/dev/null
	@hack/chromium.sh >/dev/null

.PHONY: tools
tools: $(GOLANGCI_LINT) $(GOVULNCHECK) $(CONTROLLER_GEN) $(CRD_REF_DOCS) ## Install the pinned linters and generators into $(CACHE)/tools.

$(GOLANGCI_LINT):
	GOBIN=$(dir $@) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

$(GOVULNCHECK):
	GOBIN=$(dir $@) go install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

$(CONTROLLER_GEN):
	GOBIN=$(dir $@) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)

$(CRD_REF_DOCS):
	GOBIN=$(dir $@) go install github.com/elastic/crd-ref-docs@$(CRD_REF_DOCS_VERSION)

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: lint
lint: tools ## gofmt, go mod tidy, generated code, go vet, golangci-lint, govulncheck.
	@hack/verify-generated.sh
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	go mod tidy -diff
	go vet ./...
	$(GOLANGCI_LINT) run ./...
	@hack/vulncheck.sh $(GOVULNCHECK)

.PHONY: test
test: testbin lint ## What CI runs: lint, then every test with the race detector.
	FERRY_TESTBIN=$$(hack/testbin.sh) FERRY_VAULT=$$(hack/testbin-vault.sh)/vault FERRY_ALERTMANAGER=$$(hack/alertmanager.sh) FERRY_SENTRY_NODE=$$(hack/sentry-node.sh) FERRY_CHROMIUM=$$(hack/chromium.sh) go test -race -count=1 -timeout 30m ./...

.PHONY: bench
bench: testbin ## Run the benchmarks and print their numbers (the delivery one last: it takes minutes).
	FERRY_VAULT=$$(hack/testbin-vault.sh)/vault FERRY_ALERTMANAGER=$$(hack/alertmanager.sh) go test -run '^$$' -bench . -benchmem $$(go list ./... | grep -v '/internal/delivery$$')
	@$(MAKE) --no-print-directory bench-delivery

.PHONY: bench-delivery
bench-delivery: testbin ## Time N Applications to Healthy (N=100,500,1000), push-to-applied latency for a ConfigMap change and a Deployment rollout, and the plane's own ceiling at N=1000.
	FERRY_TESTBIN=$$(hack/testbin.sh) FERRY_VAULT=$$(hack/testbin-vault.sh)/vault go test -v -run '^$$' -bench 'BenchmarkDelivery|BenchmarkControlPlaneCeiling' -benchtime 1x -timeout 60m ./internal/delivery/

.PHONY: bench-panel
bench-panel: testbin ## Server time of each panel list page with 10,000 alerts, 10,000 issues and 2,000 Applications stored.
	FERRY_TESTBIN=$$(hack/testbin.sh) go test -run '^$$' -bench BenchmarkPanelLists -benchtime 20x -timeout 30m ./internal/app/

.PHONY: bench-incidents
bench-incidents: testbin ## Alerts/s into the incident hub over HTTP (80 % duplicates; 1 and 16 senders; SQLite, PostgreSQL).
	FERRY_TESTBIN=$$(hack/testbin.sh) go test -run '^$$' -bench BenchmarkIncidentIngest -benchtime 1x -timeout 30m ./internal/app/

.PHONY: bench-errors
bench-errors: testbin ## Events/s into the error tracker over HTTP (sentry-go payloads, 80 % repeats, 16 senders, SQLite) and a no-op ceiling.
	FERRY_TESTBIN=$$(hack/testbin.sh) go test -run '^$$' -bench BenchmarkErrorIngest -benchtime 1x -timeout 30m ./internal/app/

.PHONY: generate
generate: $(CONTROLLER_GEN) $(CRD_REF_DOCS) ## Regenerate deepcopy code, CRDs and the API reference from api/.
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CRD_REF_DOCS) --source-path=./api --config=hack/crd-ref-docs.yaml --renderer=markdown \
		--output-path=docs/reference/api.md --log-level=error

.PHONY: demo
demo: build ## Start a local control plane and ferry server on SQLite; Ctrl-C stops both.
	@hack/testbin.sh >/dev/null
	@hack/demo.sh "$(DEMO_DIR)"

.PHONY: clean
clean: ## Remove build output (not the shared cache).
	rm -rf bin .demo

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'
