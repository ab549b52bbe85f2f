#!/usr/bin/env bash
# make demo: a NameServer and a broker from deploy/*.conf under a temporary
# directory, driven by the official RocketMQ Go client; Ctrl-C stops
# everything and removes the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
WORK=$(mktemp -d /tmp/qianlang-demo.XXXXXX)
pids=()
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "stopping..."
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
	echo "stopped; removed $WORK"
}
trap cleanup INT TERM EXIT

for port in 9876 10911; do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		echo "port $port is in use: stop whatever listens there first" >&2
		exit 1
	fi
done

sed -e "s#^storePathRootDir=.*#storePathRootDir=$WORK/store#" \
    -e "s#^storePathCommitLog=.*#storePathCommitLog=$WORK/store/commitlog#" deploy/broker.conf > "$WORK/broker.conf"
cp deploy/namesrv.conf "$WORK/namesrv.conf"

"$BIN/mqnamesrv" -c "$WORK/namesrv.conf" > "$WORK/namesrv.log" 2>&1 & pids+=($!)
"$BIN/mqbroker" -c "$WORK/broker.conf" > "$WORK/broker.log" 2>&1 & pids+=($!)
echo "NameServer 127.0.0.1:9876 and broker 127.0.0.1:10911 started; data and logs in $WORK"

"$BIN/qldemo" -n 127.0.0.1:9876 -t TopicOrderPaySuccess -count "${DEMO_MESSAGES:-3000}"

echo
echo "\$ $BIN/mqadmin clusterList -n 127.0.0.1:9876"
"$BIN/mqadmin" clusterList -n 127.0.0.1:9876
echo
echo "\$ $BIN/mqadmin topicStatus -n 127.0.0.1:9876 -t TopicOrderPaySuccess"
"$BIN/mqadmin" topicStatus -n 127.0.0.1:9876 -t TopicOrderPaySuccess
echo
echo "\$ $BIN/mqadmin consumerProgress -n 127.0.0.1:9876 -g demo_consumer"
"$BIN/mqadmin" consumerProgress -n 127.0.0.1:9876 -g demo_consumer
echo
echo "The cluster keeps running. Look around with, for example:"
echo "  $BIN/mqadmin topicList -n 127.0.0.1:9876"
echo "  $BIN/mqadmin updateTopic -n 127.0.0.1:9876 -c DefaultCluster -t MyTopic -r 4 -w 4"
echo "  $BIN/mqadmin consumerProgress -n 127.0.0.1:9876"
echo "  tail -f $WORK/broker.log"
echo "Press Ctrl-C to stop and clean up."
wait
