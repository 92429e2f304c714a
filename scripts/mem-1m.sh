#!/usr/bin/env bash
# mem-1m.sh: the resident size of one ringkv node (N=1, fsync always)
# holding MEM_RECORDS keys (default 1,000,000) with 100-byte values,
# measured after loading them with `ringkv bench --load` over RESP and
# again after a restart (recovery from the snapshot and WAL).
#
# VmRSS and VmHWM come from /proc/PID/status (Linux only); the heap figures
# from the node's /debug/pprof (debug.pprof on; heap-*.pprof are kept with
# MEM_KEEP=1). Bytes per key is the growth of VmRSS over the empty node,
# divided by the key count: everything the keys cost at rest, Go's spare
# heap (GOGC) included.
#
# Usage, from anywhere in the repository:
#   scripts/mem-1m.sh
# Environment:
#   MEM_RECORDS    keys to load (default 1000000)
#   MEM_VALUE      value size in bytes (default 100)
#   MEM_RINGKV     a ringkv binary to use instead of building ./cmd/ringkv
#   MEM_KEEP=1     keep the temp directory (data, logs, heap profiles)
set -euo pipefail

MEM_RECORDS=${MEM_RECORDS:-1000000}
MEM_VALUE=${MEM_VALUE:-100}
MEM_KEEP=${MEM_KEEP:-0}
HTTP=127.0.0.1:18101
RESP=127.0.0.1:16391
RPC=127.0.0.1:17101
GOSSIP=127.0.0.1:19101

die() {
	echo "mem-1m: $*" >&2
	exit 1
}
if ! [[ $MEM_RECORDS =~ ^[0-9]+$ ]] || ((MEM_RECORDS < 1 || MEM_RECORDS > 100000000)); then
	die "MEM_RECORDS must be 1..100000000, got '$MEM_RECORDS'"
fi
if ! [[ $MEM_VALUE =~ ^[0-9]+$ ]] || ((MEM_VALUE < 1 || MEM_VALUE > 1048576)); then
	die "MEM_VALUE must be 1..1048576, got '$MEM_VALUE'"
fi
[[ -r /proc/self/status ]] || die "needs Linux's /proc/PID/status"
command -v curl >/dev/null || die "needs curl"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -f go.mod && -d cmd/ringkv ]] || die "run from the ringkv repository (no go.mod and cmd/ringkv in $PWD)"

TMP=$(mktemp -d /tmp/mem-1m.XXXXXX)
PID=
cleanup() {
	if [[ -n $PID ]]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	if [[ $MEM_KEEP == 1 ]]; then
		echo "mem-1m: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT

RINGKV=${MEM_RINGKV:-}
if [[ -z $RINGKV ]]; then
	echo "mem-1m: building ringkv" >&2
	go build -o "$TMP/ringkv" ./cmd/ringkv
	RINGKV=$TMP/ringkv
fi

start() {
	RINGKV_STORAGE_FSYNC=always RINGKV_CLUSTER_REPLICATION=1 RINGKV_DEBUG_PPROF=true \
		"$RINGKV" server --name m1 --data-dir "$TMP/data" --http "$HTTP" \
		--resp "$RESP" --rpc "$RPC" --gossip "$GOSSIP" >>"$TMP/node.log" 2>&1 &
	PID=$!
	local i
	for ((i = 0; i < 3000; i++)); do # recovery of many keys can take a while
		[[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$HTTP/readyz") == 200 ]] && return 0
		kill -0 "$PID" 2>/dev/null || {
			tail -n 20 "$TMP/node.log" >&2
			die "the node exited before it was ready"
		}
		sleep 0.1
	done
	die "the node was not ready within 300 s (log: $TMP/node.log)"
}

status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PID/status"; }

# report PHASE: print the figures of the running node.
report() {
	local rss hwm
	rss=$(status_kb VmRSS)
	hwm=$(status_kb VmHWM)
	curl -s -m 60 -o "$TMP/heap-$1.pprof" "http://$HTTP/debug/pprof/heap?gc=1"
	local heap
	heap=$(go tool pprof -sample_index=inuse_space -top "$TMP/heap-$1.pprof" 2>/dev/null |
		awk '/^Showing nodes accounting for/ { print $(NF-1) }')
	[[ -n $EMPTY_RSS ]] || EMPTY_RSS=$rss
	awk -v phase="$1" -v rss="$rss" -v base="$EMPTY_RSS" -v hwm="$hwm" -v n="$MEM_RECORDS" -v heap="$heap" 'BEGIN {
		printf "%-13s VmRSS %7.1f MB (%4.0f B/key over the empty node)  VmHWM %7.1f MB  heap in use %s\n",
			phase, rss / 1024, (rss - base) * 1024 / n, hwm / 1024, heap
	}'
}
EMPTY_RSS=

echo "mem-1m: date $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mem-1m: $MEM_RECORDS keys, $MEM_VALUE-byte values, one node (N=1, fsync always) in $TMP"
start
report empty
"$RINGKV" bench --protocol resp --nodes "$RESP" --workload write --load \
	--records "$MEM_RECORDS" --value-size "$MEM_VALUE" --ops 1 --clients 50 \
	>"$TMP/load.txt" 2>"$TMP/load.err" || {
	cat "$TMP/load.txt" "$TMP/load.err" >&2
	die "the load failed"
}
grep -E '^(load|  load)' "$TMP/load.txt" || head -n 5 "$TMP/load.txt"
keys=$(curl -s -m 10 "http://$HTTP/v1/ring" | grep -o '"keys":[0-9]*' | head -n 1 | cut -d: -f2 || true)
echo "mem-1m: the node holds ${keys:-?} keys"
report after-load
kill "$PID"
wait "$PID" 2>/dev/null || true
PID=
start
report after-restart
