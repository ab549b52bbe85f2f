#!/usr/bin/env bash
# make bench: produce and consume benchmarks of the queue, with NATS
# JetStream measured by the same load generator in the same run:
#   T0  one broker, async flush                   vs NATS R1 file storage
#   T1  Raft group of 3, majority in page cache   vs NATS R3 (default sync)
#   T2  Raft group of 3, majority fsynced         vs NATS R3 sync_interval: always
# Results are printed and written into docs/benchmarks.md.
#
# and, on a Raft group of three, the business-messaging features: timer
# lateness with 100,000 pending timers, transactional versus plain sync
# send throughput, SQL92-filtered versus unfiltered pull (section
# "features" of docs/benchmarks.md).
#
# Knobs: REPS (3), DURATION (8s), WARMUP (2s), LAT_DURATION (15s),
# LAT_WARMUP (10s), SIZES ("128 1024 4096"), GROUP_SIZES ("128 512 1024
# 4096"), WINDOW (512), CONNS (4), SKIP_NATS=1, SKIP_T0=1, SKIP_GROUPS=1,
# SKIP_FEATURES=1.
#
# The latency runs at half the maximum rate (ours and the peer's) warm up
# for LAT_WARMUP, as the benchmark method asks (10 s): a fresh broker's
# first seconds of load fault in its heap and caches, and on this VM every
# first touch of a page costs several microseconds, which the throughput
# runs' short warm-up leaves inside the measured time.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${BIN:-$ROOT/bin}
REPS=${REPS:-3}
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
LAT_DURATION=${LAT_DURATION:-15s}
LAT_WARMUP=${LAT_WARMUP:-10s}
SIZES=${SIZES:-128 1024 4096}
WINDOW=${WINDOW:-512}
CONNS=${CONNS:-4}
GROUP_SIZES=${GROUP_SIZES:-128 512 1024 4096}
NATS_VERSION=v2.15.2
WORK=$(mktemp -d /tmp/qianlang-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
FEATURES=$WORK/features.jsonl
NS=127.0.0.1:29876
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	# Keep what was measured, also when a later step failed.
	for f in "$RESULTS" "$FEATURES"; do
		if [ -s "$f" ]; then cp "$f" "/tmp/qianlang-bench-$(basename "$f" .jsonl)-$$.jsonl" && echo "kept /tmp/qianlang-bench-$(basename "$f" .jsonl)-$$.jsonl" >&2; fi
	done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

drop_caches() {
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}

wait_port() {
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "port $1 did not open" >&2
	return 1
}

# start_queue: a NameServer and an ASYNC_FLUSH broker on a fresh store.
start_queue() {
	rm -rf "$WORK/q" && mkdir -p "$WORK/q"
	printf 'listenPort=29876\nbindAddress=127.0.0.1\n' > "$WORK/q/namesrv.conf"
	sed -e "s#^storePathRootDir=.*#storePathRootDir=$WORK/q/store#" \
	    -e "s#^storePathCommitLog=.*#storePathCommitLog=$WORK/q/store/commitlog#" \
	    -e "s#^namesrvAddr=.*#namesrvAddr=$NS#" -e "s#^listenPort=.*#listenPort=30911#" deploy/broker.conf > "$WORK/q/broker.conf"
	"$BIN/mqnamesrv" -c "$WORK/q/namesrv.conf" > "$WORK/q/namesrv.log" 2>&1 & NS_PID=$!
	wait_port 29876
	"$BIN/mqbroker" -c "$WORK/q/broker.conf" > "$WORK/q/broker.log" 2>&1 & BROKER_PID=$!
	pids+=("$NS_PID" "$BROKER_PID")
	wait_port 30911
}

stop_queue() {
	kill -TERM "$BROKER_PID" "$NS_PID" 2>/dev/null || true
	wait "$BROKER_PID" "$NS_PID" 2>/dev/null || true
	rm -rf "$WORK/q"
}

# nats_server: the peer, installed from the Go module proxy when missing.
nats_server() {
	if command -v nats-server >/dev/null 2>&1; then command -v nats-server; return; fi
	local dir="${XDG_CACHE_HOME:-$HOME/.cache}/qianlang-bench/$NATS_VERSION"
	if [ ! -x "$dir/nats-server" ]; then
		echo "installing nats-server $NATS_VERSION from the Go module proxy into $dir" >&2
		GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/nats-io/nats-server/v2@$NATS_VERSION" >&2
	fi
	echo "$dir/nats-server"
}

start_nats() {
	rm -rf "$WORK/n" && mkdir -p "$WORK/n"
	cat > "$WORK/n/nats.conf" <<EOF
listen: 127.0.0.1:24222
jetstream { store_dir: "$WORK/n/js", max_file_store: 16G, max_memory_store: 1G }
EOF
	"$NATS" -c "$WORK/n/nats.conf" > "$WORK/n/nats.log" 2>&1 & NATS_PID=$!
	pids+=("$NATS_PID")
	wait_port 24222
}

stop_nats() {
	kill -TERM "$NATS_PID" 2>/dev/null || true
	wait "$NATS_PID" 2>/dev/null || true
	rm -rf "$WORK/n"
}

# start_group FLUSH: a NameServer and a Raft group of three brokers on
# fresh stores, from deploy/group's broker-a configs.
start_group() {
	rm -rf "$WORK/g" && mkdir -p "$WORK/g"
	printf 'listenPort=29876\nbindAddress=127.0.0.1\n' > "$WORK/g/namesrv.conf"
	"$BIN/mqnamesrv" -c "$WORK/g/namesrv.conf" > "$WORK/g/namesrv.log" 2>&1 & NS_PID=$!
	pids+=("$NS_PID")
	wait_port 29876
	GROUP_PIDS=()
	for k in 0 1 2; do
		sed -e "s#^storePathRootDir=.*#storePathRootDir=$WORK/g/n$k#" \
		    -e "s#^storePathCommitLog=.*#storePathCommitLog=$WORK/g/n$k/commitlog#" \
		    -e "s#^namesrvAddr=.*#namesrvAddr=$NS#" -e "s#^listenPort=.*#listenPort=3091$k#" \
		    -e "s#^flushDiskType=.*#flushDiskType=$1#" \
		    -e "s#^dLegerPeers=.*#dLegerPeers=n0-127.0.0.1:31911;n1-127.0.0.1:31912;n2-127.0.0.1:31913#" \
		    deploy/group/broker-a-n$k.conf > "$WORK/g/broker-n$k.conf"
		echo "dLegerShutdownDrainMs=0" >> "$WORK/g/broker-n$k.conf"
		echo "enablePropertyFilter=true" >> "$WORK/g/broker-n$k.conf"
		"$BIN/mqbroker" -c "$WORK/g/broker-n$k.conf" > "$WORK/g/broker-n$k.log" 2>&1 &
		GROUP_PIDS+=("$!")
		pids+=("$!")
	done
	for k in 0 1 2; do wait_port "3091$k"; done
	GROUP_WATCH=$(IFS=,; echo "${GROUP_PIDS[*]}")
}

stop_group() {
	kill -TERM "${GROUP_PIDS[@]}" "$NS_PID" 2>/dev/null || true
	wait "${GROUP_PIDS[@]}" "$NS_PID" 2>/dev/null || true
	rm -rf "$WORK/g"
}

# start_nats_cluster SYNC: three JetStream servers in one cluster; with
# SYNC=always every write is fsynced before it counts.
start_nats_cluster() {
	rm -rf "$WORK/nc" && mkdir -p "$WORK/nc"
	NATS_PIDS=()
	local sync=""
	[ "$1" = always ] && sync="sync_interval: always"
	for k in 0 1 2; do
		cat > "$WORK/nc/n$k.conf" <<EOF
server_name: n$k
listen: 127.0.0.1:2422$k
jetstream { store_dir: "$WORK/nc/js$k", max_file_store: 16G, max_memory_store: 1G, $sync }
cluster { name: bench, listen: 127.0.0.1:2522$k, routes: [nats://127.0.0.1:25220, nats://127.0.0.1:25221, nats://127.0.0.1:25222] }
EOF
		"$NATS" -c "$WORK/nc/n$k.conf" > "$WORK/nc/n$k.log" 2>&1 &
		NATS_PIDS+=("$!")
		pids+=("$!")
	done
	for k in 0 1 2; do wait_port "2422$k"; done
	sleep 3 # JetStream meta leader election
	NATS_WATCH=$(IFS=,; echo "${NATS_PIDS[*]}")
}

stop_nats_cluster() {
	kill -TERM "${NATS_PIDS[@]}" 2>/dev/null || true
	wait "${NATS_PIDS[@]}" 2>/dev/null || true
	rm -rf "$WORK/nc"
}

# median_max PREFIX: the median msgs/s of the closed-loop runs whose JSON
# line starts with PREFIX (system, tier, command, client, size).
median_max() {
	grep -F "{$1," "$RESULTS" | grep '"rate":0' |
		sed -E 's/.*"msgs_per_s":([0-9.]+).*/\1/' | sort -n | awk '{a[NR]=$1} END {print int(a[int((NR+1)/2)])}'
}

produce() { # args for qlbench produce; appends one JSON line per run
	"$BIN/qlbench" produce -json "$@" | tee -a "$RESULTS" | cut -c1-160 >&2
}

echo "results collect in $RESULTS" >&2

# Our broker: closed loop per size, with our pipelined generator and with
# the official client.
if [ "${SKIP_T0:-}" != 1 ]; then
for client in native official; do
	for size in $SIZES; do
		for rep in $(seq 1 "$REPS"); do
			drop_caches
			start_queue
			"$BIN/qlbench" topic -n $NS -t Bench -queues 8
			produce -system qianlang -tier T0 -client $client -n $NS -t Bench -size "$size" \
				-duration "$DURATION" -warmup "$WARMUP" -window "$WINDOW" -conns "$CONNS" -watch-pid "$BROKER_PID"
			if [ "$size" = 1024 ]; then
				"$BIN/qlbench" consume -json -system qianlang -tier T0 -client $client -n $NS -t Bench \
					-expect 200000 | tee -a "$RESULTS" | cut -c1-160 >&2
			fi
			stop_queue
		done
	done
done

# Latency at half of the 1 KiB maximum, open loop.
HALF=$(($(median_max '"system":"qianlang","tier":"T0","command":"produce","client":"native","size":1024') / 2))
for rep in $(seq 1 "$REPS"); do
	drop_caches
	start_queue
	"$BIN/qlbench" topic -n $NS -t Bench -queues 8
	produce -system qianlang -tier T0 -client native -n $NS -t Bench -size 1024 -duration "$LAT_DURATION" \
		-warmup "$LAT_WARMUP" -window 2048 -conns "$CONNS" -rate "$HALF" -watch-pid "$BROKER_PID"
	stop_queue
done

# The peer, same generator, same window, same sizes, same half rate.
if [ "${SKIP_NATS:-}" != 1 ]; then
	NATS=$(nats_server)
	for size in $SIZES; do
		for rep in $(seq 1 "$REPS"); do
			drop_caches
			start_nats
			produce -system "nats-jetstream $NATS_VERSION" -tier T0 -client nats -nats nats://127.0.0.1:24222 -replicas 1 \
				-t bench.1 -size "$size" -duration "$DURATION" -warmup "$WARMUP" -window "$WINDOW" -conns "$CONNS" -watch-pid "$NATS_PID"
			stop_nats
		done
	done
	for rep in $(seq 1 "$REPS"); do
		drop_caches
		start_nats
		produce -system "nats-jetstream $NATS_VERSION" -tier T0 -client nats -nats nats://127.0.0.1:24222 -replicas 1 \
			-t bench.1 -size 1024 -duration "$LAT_DURATION" -warmup "$LAT_WARMUP" -window 2048 -conns "$CONNS" -rate "$HALF" -watch-pid "$NATS_PID"
		stop_nats
	done
fi
fi # SKIP_T0

# Raft groups of three on this one machine (all replicas share its two
# cores and its disk), against NATS JetStream R3 at the same durability.
# Each of our runs is followed by the peer's run of the same tier and size,
# so a drift of the machine's speed in the middle of the bench shifts both
# sides of a ratio alike.
if [ "${SKIP_GROUPS:-}" != 1 ]; then
	[ "${SKIP_NATS:-}" != 1 ] && NATS=$(nats_server)
	for tier in T1 T2; do
		flush=ASYNC_FLUSH; [ $tier = T2 ] && flush=SYNC_FLUSH
		sync=default; [ $tier = T2 ] && sync=always
		for size in $GROUP_SIZES; do
			for rep in $(seq 1 "$REPS"); do
				drop_caches
				start_group $flush
				"$BIN/qlbench" topic -n $NS -t Bench -queues 8
				produce -system qianlang-raft3 -tier $tier -client native -n $NS -t Bench -size "$size" \
					-duration "$DURATION" -warmup "$WARMUP" -window "$WINDOW" -conns "$CONNS" -watch-pid "$GROUP_WATCH"
				stop_group
				[ "${SKIP_NATS:-}" = 1 ] && continue
				drop_caches
				start_nats_cluster $sync
				produce -system "nats-jetstream-r3 $NATS_VERSION" -tier $tier -client nats -nats nats://127.0.0.1:24220 -replicas 3 \
					-t bench.1 -size "$size" -duration "$DURATION" -warmup "$WARMUP" -window "$WINDOW" -conns "$CONNS" -watch-pid "$NATS_WATCH"
				stop_nats_cluster
			done
		done
	done
	# Publish-to-acknowledgement latency at half the T1 1 KiB maximum.
	GMAX=$(median_max '"system":"qianlang-raft3","tier":"T1","command":"produce","client":"native","size":1024' || true)
	GHALF=$((${GMAX:-0} / 2))
	[ "$GHALF" -gt 0 ] && for rep in $(seq 1 "$REPS"); do
		drop_caches
		start_group ASYNC_FLUSH
		"$BIN/qlbench" topic -n $NS -t Bench -queues 8
		produce -system qianlang-raft3 -tier T1 -client native -n $NS -t Bench -size 1024 -duration "$LAT_DURATION" \
			-warmup "$LAT_WARMUP" -window 2048 -conns "$CONNS" -rate "$GHALF" -watch-pid "$GROUP_WATCH"
		stop_group
	done
	# The peer at half of its own T1 1 KiB maximum: what the same machine
	# and generator give a mature Raft-replicated stream.
	NMAX=$(median_max "\"system\":\"nats-jetstream-r3 $NATS_VERSION\",\"tier\":\"T1\",\"command\":\"produce\",\"client\":\"nats\",\"size\":1024" || true)
	NHALF=$((${NMAX:-0} / 2))
	[ "${SKIP_NATS:-}" != 1 ] && [ "$NHALF" -gt 0 ] && for rep in $(seq 1 "$REPS"); do
		drop_caches
		start_nats_cluster default
		produce -system "nats-jetstream-r3 $NATS_VERSION" -tier T1 -client nats -nats nats://127.0.0.1:24220 -replicas 3 \
			-t bench.1 -size 1024 -duration "$LAT_DURATION" -warmup "$LAT_WARMUP" -window 2048 -conns "$CONNS" -rate "$NHALF" -watch-pid "$NATS_WATCH"
		stop_nats_cluster
	done
fi

# Business messaging on a Raft group of three (T1).
feature() { # args for qlbench delay|txn|filter; appends one JSON line
	"$BIN/qlbench" "$@" -json -system qianlang-raft3 -tier T1 | tee -a "$FEATURES" | cut -c1-160 >&2
}
if [ "${SKIP_FEATURES:-}" != 1 ]; then
	for rep in $(seq 1 "$REPS"); do
		drop_caches
		start_group ASYNC_FLUSH
		"$BIN/qlbench" topic -n $NS -t BenchDelay -queues 8
		feature delay -n $NS -t BenchDelay -pending 100000 -lead 15s -spread 30s -size 256
		stop_group
	done
	for rep in $(seq 1 "$REPS"); do
		drop_caches
		start_group ASYNC_FLUSH
		"$BIN/qlbench" topic -n $NS -t BenchTx -queues 8
		feature txn -n $NS -t BenchTx -workers 16 -size 1024 -warmup "$WARMUP" -duration "$DURATION"
		feature txn -n $NS -t BenchTx -workers 16 -size 1024 -warmup "$WARMUP" -duration "$DURATION" -plain
		stop_group
	done
	for rep in $(seq 1 "$REPS"); do
		drop_caches
		start_group ASYNC_FLUSH
		"$BIN/qlbench" topic -n $NS -t BenchFilter -queues 8
		feature filter -n $NS -t BenchFilter -messages 200000 -size 1024 -fill
		feature filter -n $NS -t BenchFilter -messages 200000 -size 1024 -expr "a = 3"
		feature filter -n $NS -t BenchFilter -messages 200000 -size 1024 -expr "a >= 0 AND region IN ('hz', 'sh')"
		stop_group
	done
fi

CITE="make bench (REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP LAT_DURATION=$LAT_DURATION LAT_WARMUP=$LAT_WARMUP WINDOW=$WINDOW CONNS=$CONNS)"
if [ -s "$RESULTS" ]; then
	"$BIN/qlbench" report -in "$RESULTS" -out docs/benchmarks.md -command "$CITE"
	sed -n '/results:begin/,/results:end/p' docs/benchmarks.md
fi
if [ -s "$FEATURES" ]; then
	"$BIN/qlbench" report -in "$FEATURES" -out docs/benchmarks.md -section features -command "$CITE"
	sed -n '/features:begin/,/features:end/p' docs/benchmarks.md
fi
