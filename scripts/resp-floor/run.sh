#!/usr/bin/env bash
# Compares the CPU per request of redis-server (no persistence) with the
# two floor servers of main.go (a goroutine per connection; gnet event
# loops) under the same redis-benchmark, in interleaved rounds. Needs Go,
# redis-server and redis-benchmark (Debian: redis-server redis-tools).
# Usage: scripts/resp-floor/run.sh [rounds]   (loopback ports 16400-16402)
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${1:-3}
REQUESTS=200000
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

for tool in redis-server redis-cli redis-benchmark go; do
	command -v "$tool" >/dev/null || { echo "resp-floor: $tool is needed" >&2; exit 1; }
done
go build -o "$TMP/resp-floor" .

declare -A PORT=([redis]=16400 [goroutine]=16401 [gnet]=16402)
declare -A PID
redis-server --port "${PORT[redis]}" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 &
PID[redis]=$!
"$TMP/resp-floor" -mode goroutine -addr "127.0.0.1:${PORT[goroutine]}" &
PID[goroutine]=$!
"$TMP/resp-floor" -mode gnet -addr "127.0.0.1:${PORT[gnet]}" &
PID[gnet]=$!
PIDS=("${PID[@]}")
for t in redis goroutine gnet; do
	for _ in $(seq 50); do
		redis-cli -p "${PORT[$t]}" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
done

# cpu PID: utime+stime in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

printf '%-6s %-10s %5s %12s %16s\n' round server test requests/s cpu_us/request
for r in $(seq "$ROUNDS"); do
	for t in redis goroutine gnet; do
		for op in set get; do
			c0=$(cpu "${PID[$t]}")
			rps=$(redis-benchmark -p "${PORT[$t]}" -t "$op" -c 50 -n "$REQUESTS" -r 100000 -d 100 -q --csv 2>/dev/null |
				awk -F, 'NR == 2 {gsub(/"/, "", $2); print $2}')
			c1=$(cpu "${PID[$t]}")
			us=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$REQUESTS" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
			printf '%-6s %-10s %5s %12s %16s\n' "$r" "$t" "$op" "$rps" "$us"
		done
	done
done
