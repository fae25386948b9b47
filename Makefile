# churnwatch: make demo (see it work), make test (everything CI runs).
SHELL := /bin/bash
GO ?= go
BIN := bin/churnwatch
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build deps clickhouse clickhouse-stop cluster cluster-stop tools test test-short lint demo clean eval bench chaos

all: build

deps:
	@$(GO) mod download

# The commit the binary is built from, for the runs `make bench` records (empty outside git);
# expanded only when build runs.
REVISION = $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD -- . ":!pipeline/bench/results" 2>/dev/null || echo +modified)

build: deps
	$(GO) build -ldflags "-X churnwatch/pipeline/bench.revision=$(REVISION)" -o $(BIN) ./cmd/churnwatch

# The local ClickHouse server (installed from Debian packages when missing).
clickhouse:
	@deploy/local/clickhouse.sh start

clickhouse-stop:
	@deploy/local/clickhouse.sh stop

# The local two-server ClickHouse cluster with ZooKeeper, for the cluster DDL (docs/cluster.md).
cluster:
	@deploy/local/cluster.sh start

cluster-stop:
	@deploy/local/cluster.sh stop

# Command-line tools the tests use (kcat).
tools:
	@deploy/local/tools.sh install

# Lint, then every test, against the real ClickHouse server (and the local cluster) and an
# in-process Kafka-protocol broker.
test: deps clickhouse cluster tools lint
	$(GO) test -count=1 -timeout 20m ./...

lint: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Starts ClickHouse and the embedded broker, runs the pipeline, drives it with simulated
# traffic and shows the data arriving. Ctrl-C stops everything.
demo: build clickhouse
	@deploy/local/demo.sh $(BIN)

# Replays a simulated population with known churners (2,000 subscribers, 35 days after 28 of
# warm-up) through the pipeline on its own broker and a scratch database, and prints how well
# each signal catches the churners (docs/eval.md). Flags: make eval EVAL_FLAGS="--seed 2 --json".
eval: build clickhouse
	$(BIN) eval $(EVAL_FLAGS)

# Performance figures (pipeline/bench, issue 7): pre-loads a simulated population into an
# in-process broker, then prints throughput against ClickHouse's Kafka engine (the medians of
# three alternated rounds), event-to-warning latency, real-time state bytes per subscriber, daily
# evaluation time and a CPU profile's path,
# and appends them to pipeline/bench/results/results.jsonl. Default 52,000 subscribers x 7 days
# (2.08 million events), latency at 20,000 events/s, and the daily evaluation also over a synthetic
# 200,000 x 35 days; flags through BENCH_FLAGS (bin/churnwatch bench -h). It stops the test
# cluster that make test leaves running first: its three servers would share the two cores.
bench: build clickhouse cluster-stop
	CHURNWATCH_LOG_LEVEL=$${CHURNWATCH_LOG_LEVEL:-warn} $(BIN) bench $(BENCH_FLAGS)

# The fault suite at full size (README, "Reliability"): about 210,000 events through
# `churnwatch run` killed six times, its ClickHouse stopped for 30 s, its broker restarted and a
# second instance joining and leaving, checked against an oracle after every fault; then the
# negative control. make test runs the same suite at a reduced size.
chaos: deps clickhouse
	CHURNWATCH_CHAOS_SUBSCRIBERS=$${CHURNWATCH_CHAOS_SUBSCRIBERS:-2000} CHURNWATCH_CHAOS_DAYS=$${CHURNWATCH_CHAOS_DAYS:-20} \
	CHURNWATCH_CHAOS_OUTAGE=$${CHURNWATCH_CHAOS_OUTAGE:-30s} \
	$(GO) test -count=1 -timeout 30m -run 'TestChaos' -v ./cmd/churnwatch

clean:
	rm -rf bin
