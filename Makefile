# Qianlang — build, test, benchmark and demo.
#
#   make demo    start a NameServer and a broker and drive them with the official client
#   make test    every test (what CI runs)
#   make bench   benchmarks; results go to docs/benchmarks.md
#   make build   binaries into bin/

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
MODULES := mq integration-tests
export GOFLAGS := -buildvcs=false

.PHONY: all build build-race test test-unit test-integration vet fmt-check fuzz bench demo clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./mq/cmd/mqnamesrv ./mq/cmd/mqbroker ./mq/cmd/mqadmin
	cd integration-tests && $(GO) build -o $(BIN)/ ./cmd/...

fmt-check:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet:
	cd mq && $(GO) vet ./...
	cd integration-tests && $(GO) vet ./...

# Unit tests with the race detector; fuzz targets run their committed seed corpora.
test-unit:
	cd mq && $(GO) test -race -count=1 ./...

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

test: fmt-check vet test-unit test-integration

# Each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	cd mq && for t in FuzzDecodeFrame FuzzDecodeJSONHeader FuzzJSONHeaderFastPath; do $(GO) test -run=^$$ -fuzz=^$$t$$ -fuzztime=$(FUZZTIME) ./remoting || exit 1; done
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
