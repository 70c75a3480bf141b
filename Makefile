# baton — common tasks. `make test` is the whole test suite (what CI runs).
GO        ?= go
BIN       ?= bin/baton
PG_URL    ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
MQTT_ADDR ?= 127.0.0.1:1883
TEST_P    ?= 2
IMAGE     ?= ghcr.io/baton-dev/baton:dev
# The container builder: the first of docker, podman and buildah that works.
BUILDER   ?= $(shell for b in docker podman buildah; do command -v $$b >/dev/null 2>&1 && $$b info >/dev/null 2>&1 && { echo $$b; break; }; done)

.PHONY: all build run test test-maestro test-unit bench kube-assets vet fmt demo clean image fuzz fuzz-smoke chaos

all: build

build:
	@echo "building $(BIN) (the first build downloads the Go modules: a few minutes)…"
	$(GO) build -o $(BIN) ./cmd/baton

run: build
	@echo "starting $(BIN) server (REST on :8000, data in ./data)…"
	./$(BIN) server

kube-assets:
	@internal/kubeassets/kube-assets.sh >/dev/null

# The whole suite: both stores, a real kube-apiserver + etcd, real Mosquitto.
test: kube-assets build
	KUBEBUILDER_ASSETS=$$(internal/kubeassets/kube-assets.sh) BATON_TEST_POSTGRES='$(PG_URL)' BATON_TEST_MQTT='$(MQTT_ADDR)' \
	BATON_BIN=$(CURDIR)/$(BIN) $(GO) test -p $(TEST_P) -count=1 -timeout 20m ./...
	$(MAKE) test-maestro
	$(MAKE) fuzz-smoke

# Maestro's own source client library (sdk-go) against the built server and
# agent: a module of its own (test/maestro) so sdk-go stays out of go.mod.
test-maestro: kube-assets build
	KUBEBUILDER_ASSETS=$$(internal/kubeassets/kube-assets.sh) BATON_TEST_POSTGRES='$(PG_URL)' \
	BATON_BIN=$(CURDIR)/$(BIN) $(GO) -C test/maestro test -count=1 -timeout 10m ./...

# Every fuzz target for FUZZTIME each (docs/security.md has the results).
FUZZTIME ?= 10m
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) hack/fuzz.sh

# A few hundred fuzzed inputs per target (part of `make test`); the seed
# corpora and kept crashers also run in every plain `go test`.
fuzz-smoke:
	FUZZTIME=300x GO=$(GO) hack/fuzz.sh

# Pure-logic tests only (no kube-apiserver, no PostgreSQL).
test-unit:
	$(GO) test -short -count=1 ./...

bench: kube-assets build
	KUBEBUILDER_ASSETS=$$(internal/kubeassets/kube-assets.sh) BATON_TEST_POSTGRES='$(PG_URL)' \
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./...

# Seeded random faults over a random workload through the real processes,
# then the checker (test/chaos). The last line printed is
# "chaos: <ops> ops, <faults> faults, <lost> lost, <stale> stale, <violations> violations".
# FAULTS is kind=weight,... of server agent cut drop kubecut dup delay clock
# pgterm pgkill broker (empty: every kind the STORE and TRANSPORT allow);
# STORE=postgres runs a PostgreSQL of its own (pgkill) when initdb is installed.
DURATION    ?= 2m
SEED        ?= 42
STORE       ?= sqlite
TRANSPORT   ?= grpc
REPLICAS    ?= 1
AGENTS      ?= 3
FAULTS      ?=
FAULT_EVERY ?= 6s
chaos: kube-assets build
	$(GO) test -c -o bin/chaos.test ./test/chaos
	KUBEBUILDER_ASSETS=$$(internal/kubeassets/kube-assets.sh) BATON_TEST_POSTGRES='$(PG_URL)' BATON_CHAOS=1 \
	BATON_BIN=$(CURDIR)/$(BIN) bin/chaos.test -test.run '^TestChaos$$' -test.v -test.timeout 2h \
	  -chaos.duration $(DURATION) -chaos.seed $(SEED) -chaos.store $(STORE) -chaos.transport $(TRANSPORT) \
	  -chaos.replicas $(REPLICAS) -chaos.agents $(AGENTS) \
	  -chaos.faults '$(FAULTS)' -chaos.fault-every $(FAULT_EVERY)

vet:
	$(GO) vet ./...
	$(GO) -C test/maestro vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Reuses a running `bin/baton dev` on 127.0.0.1:8000, else starts its own;
# DEMO_ARGS='-server URL -kubeconfig FILE' points it at another.
demo: build
	hack/demo.sh $(DEMO_ARGS)

# The container image (deploy/image/Dockerfile): needs a working docker,
# podman or buildah; BUILDER=... picks one, IMAGE=... names the result.
image:
	@test -n "$(BUILDER)" || { echo "make image: no working container builder (docker, podman or buildah) found; set BUILDER=" >&2; exit 1; }
	@if [ "$(notdir $(BUILDER))" = buildah ]; then \
	  $(BUILDER) bud -f deploy/image/Dockerfile -t $(IMAGE) . ; \
	else \
	  $(BUILDER) build -f deploy/image/Dockerfile -t $(IMAGE) . ; \
	fi

clean:
	rm -rf bin
