# Qianlang — build, test, benchmark and demo.
#
#   make demo    start a NameServer and a broker and drive them with the official client
#   make test    every test (what CI runs)
#   make bench   benchmarks; results go to docs/benchmarks.md
#   make build   binaries into bin/

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
MODULES := mq integration-tests services
STATICCHECK_VERSION := v0.8.2
TOOLS := $(BIN)/tools
export GOFLAGS := -buildvcs=false

.PHONY: all build build-race test test-unit test-services test-integration vet fmt-check lint tidy-check check-tracked deps fuzz bench demo clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./mq/cmd/mqnamesrv ./mq/cmd/mqbroker ./mq/cmd/mqadmin
	cd integration-tests && $(GO) build -o $(BIN)/ ./cmd/...
	cd services && $(GO) build -o $(BIN)/ ./cmd/...

fmt-check:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet:
	for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

# staticcheck, pinned, installed into bin/tools on first use.
$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(TOOLS)/staticcheck
	for m in $(MODULES); do (cd $$m && $(TOOLS)/staticcheck ./...) || exit 1; done

# go.mod and go.sum of every module are what `go mod tidy` makes them.
tidy-check:
	@for m in $(MODULES); do \
		d=$$(mktemp -d); cp $$m/go.mod $$m/go.sum $$d/; \
		(cd $$m && $(GO) mod tidy) || exit 1; \
		if ! cmp -s $$m/go.mod $$d/go.mod || ! cmp -s $$m/go.sum $$d/go.sum; then \
			echo "$$m: go.mod/go.sum are not tidy; run go mod tidy in $$m"; diff $$d/go.mod $$m/go.mod; \
			cp $$d/go.mod $$d/go.sum $$m/; rm -rf $$d; exit 1; fi; \
		rm -rf $$d; done

# No built executable and no file over 1 MB is tracked (fuzz corpora aside).
check-tracked:
	./.ci/check-tracked-files

# Debian packages the platform and its tests run on (installed when missing).
deps:
	./deploy/debian-packages.sh

# Unit tests with the race detector; fuzz targets run their committed seed corpora.
test-unit:
	cd mq && $(GO) test -race -count=1 ./...

# The services against a real MariaDB and in-process queue clusters, then
# the launcher's tests with the real binaries.
test-services: deps build
	cd services && QIANLANG_BIN=$(BIN) $(GO) test -race -count=1 -p 1 -timeout 20m ./...

# Binaries built with the race detector, for the process tests.
build-race:
	@mkdir -p $(BIN)/race
	$(GO) build -race -o $(BIN)/race/ ./mq/cmd/mqnamesrv ./mq/cmd/mqbroker ./mq/cmd/mqadmin

# End-to-end tests through the official client: in-process clusters and,
# for crashes, the real binaries as separate processes. The official
# client has data races of its own, so these tests run without the race
# detector; the broker binaries they start are built with it, and a race
# report in their logs fails the test.
test-integration: build build-race
	cd integration-tests && QIANLANG_BIN=$(BIN)/race $(GO) test -count=1 -p 1 -timeout 20m ./...

test: check-tracked fmt-check vet lint tidy-check test-unit test-services test-integration

# Each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	cd mq && for t in FuzzDecodeFrame FuzzDecodeJSONHeader FuzzJSONHeaderFastPath FuzzJSONStringMatchesStdlib; do $(GO) test -run=^$$ -fuzz=^$$t$$ -fuzztime=$(FUZZTIME) ./remoting || exit 1; done
	cd mq && for t in FuzzDecodeRecord FuzzParseRecord FuzzDecodeBatch; do $(GO) test -run=^$$ -fuzz=^$$t$$ -fuzztime=$(FUZZTIME) ./message || exit 1; done
	cd mq && for t in FuzzDecodeEntry FuzzScanSegment; do $(GO) test -run=^$$ -fuzz=^$$t$$ -fuzztime=$(FUZZTIME) ./store || exit 1; done
	cd mq && $(GO) test -run=^$$ -fuzz=^FuzzReadFrame$$ -fuzztime=$(FUZZTIME) ./replica || exit 1
	cd mq && $(GO) test -run=^$$ -fuzz=^FuzzCompile$$ -fuzztime=$(FUZZTIME) ./sql92 || exit 1

bench: build
	./integration-tests/bench/run.sh

demo: build
	./deploy/demo.sh

clean:
	rm -rf $(BIN)
