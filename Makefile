# Run `make` or `make help` for the list of targets.
GO ?= go
PROTOC ?= protoc
EVENT_PROTOS := $(sort $(wildcard proto/polyproto/chat/events/v1/*.proto))
ALL_PROTOS := $(sort $(shell find proto -name '*.proto'))

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: run
run: ## start the server on its embedded defaults (127.0.0.1:8080, ./data)
	$(GO) run ./cmd/polyproto-chat

.PHONY: build
build: ## build the binaries into ./bin
	$(GO) build -o bin/ ./cmd/...

.PHONY: test
test: interop/node_modules/.package-lock.json ## the whole test suite, with the race detector: vet, unit, conformance, crash, end-to-end, MLS interop
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

# The ts-mls peer the MLS interop test runs (interop/README.md). npm ci writes node_modules/.package-lock.json;
# touch dates it after package-lock.json even if npm kept an old one, so npm ci reruns only when the lockfile changes.
interop/node_modules/.package-lock.json: interop/package-lock.json
	cd interop && npm ci
	touch $@

.PHONY: bench
bench: ## the Go benchmarks behind docs/PERFORMANCE.md
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./events/embedded/ ./actors/ ./projections/ ./projections/history/ ./gateway/

bin/protoc-gen-go: go.mod go.sum
	$(GO) build -o $@ google.golang.org/protobuf/cmd/protoc-gen-go

.PHONY: proto
proto: bin/protoc-gen-go ## regenerate the .pb.go files (needs protoc: apt-get install protobuf-compiler)
	$(PROTOC) -I proto --plugin=protoc-gen-go=bin/protoc-gen-go --go_out=proto --go_opt=paths=source_relative $(ALL_PROTOS)

.PHONY: proto-check
proto-check: proto ## fail if regeneration changes anything or a stored-event schema broke
	@test -z "$$(git status --porcelain -- proto)" || { git status --short -- proto; git diff --stat -- proto; echo 'make proto changed generated files: commit them'; exit 1; }
	$(GO) test -count=1 -run TestEventSchemasCompatible ./proto/

.PHONY: proto-lock
proto-lock: proto ## accept the current event schemas as the new baseline, only if compatible
	$(GO) test -count=1 -run TestEventSchemasCompatible ./proto/
	$(PROTOC) -I proto --include_imports --descriptor_set_out=proto/events.lock.binpb $(EVENT_PROTOS)
