#!/usr/bin/env bash
# bench-vs-redis.sh: the same redis-benchmark run against Redis and ringkv,
# side by side, on one machine.
#
# Targets, all on 127.0.0.1 with fresh temp directories:
#   redis      redis-server without persistence            port 16379
#   redis-aof  redis-server, appendonly + appendfsync always port 16380
#   cluster    ringkv dev: 3 nodes, N=3, fsync always       RESP 6380 (n1)
#   single     one ringkv server, N=1, fsync always         RESP 16381
#
# Every round runs each target once, in that order, so that a change in the
# machine's load hits all targets alike; the table gives the median of the
# rounds per target and the ratios the project's targets are stated in.
# SET and GET are two redis-benchmark runs (-t set, then -t get), so that
# the CPU each costs can be told apart: around every run the script reads
# the user+system CPU time of the target's server processes from
# /proc/PID/stat (for the cluster, its three nodes and the ringkv dev
# supervisor, summed) and that of redis-benchmark (bash's `times`), and a
# second table gives both per request. On a shared machine req/s moves by
# 15-20% from run to run, and says little about where the time goes; CPU
# per request says which process and which test spend it (it too moves
# with the machine's other load, hence the same rounds and medians).
#
# The dev cluster's nodes answer /readyz while the cluster may still be
# settling; the rounds start only once every node's /metrics shows the
# same stable plan of three serving members, all three alive, and no
# partition pending or in flight (see wait_settled).
# The figures are measurements: the script exits non-zero only when
# something could not run (install, build, start, or a benchmark failed),
# never because a ratio is low.
#
# Usage, from anywhere in the repository (root installs missing packages):
#   scripts/bench-vs-redis.sh
# Environment:
#   BENCH_N        requests per test and run (default 100000)
#   BENCH_ROUNDS   interleaved rounds (default 3)
#   BENCH_CLIENTS  parallel connections (default 50)
#   BENCH_RINGKV   a ringkv binary to use instead of building ./cmd/ringkv
#   BENCH_KEEP=1   keep the temp directory (data and logs) at exit
set -euo pipefail

BENCH_N=${BENCH_N:-100000}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_CLIENTS=${BENCH_CLIENTS:-50}
BENCH_KEEP=${BENCH_KEEP:-0}

REDIS_PORT=16379
REDIS_AOF_PORT=16380
CLUSTER_RESP_PORT=6380
SINGLE_HTTP=127.0.0.1:18001
SINGLE_RESP_PORT=16381
SINGLE_RPC=127.0.0.1:17001
SINGLE_GOSSIP=127.0.0.1:19001
# ringkv dev's fixed layout (docs/cli.md): HTTP 800i, RESP 638(i-1), RPC
# 700i, gossip 900i.
DEV_PORTS=(8001 8002 8003 6380 6381 6382 7001 7002 7003 9001 9002 9003)
TARGETS=(redis redis-aof cluster single)

die() {
	echo "bench-vs-redis: $*" >&2
	exit 1
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 > 0)); }
is_uint "$BENCH_N" || die "BENCH_N must be a positive integer, got '$BENCH_N'"
is_uint "$BENCH_ROUNDS" || die "BENCH_ROUNDS must be a positive integer, got '$BENCH_ROUNDS'"
is_uint "$BENCH_CLIENTS" || die "BENCH_CLIENTS must be a positive integer, got '$BENCH_CLIENTS'"
((BENCH_ROUNDS <= 100)) || die "BENCH_ROUNDS must be at most 100, got $BENCH_ROUNDS"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -f go.mod && -d cmd/ringkv ]] || die "run from the ringkv repository (no go.mod and cmd/ringkv in $PWD)"

# --- tools -------------------------------------------------------------------

need_pkgs=()
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
if ! command -v redis-benchmark >/dev/null || ! command -v redis-cli >/dev/null; then
	need_pkgs+=(redis-tools)
fi
command -v curl >/dev/null || need_pkgs+=(curl)
command -v pgrep >/dev/null || need_pkgs+=(procps)
if ((${#need_pkgs[@]} > 0)); then
	command -v apt-get >/dev/null || die "missing ${need_pkgs[*]} and no apt-get to install them; install them and re-run"
	[[ $(id -u) -eq 0 ]] || die "missing ${need_pkgs[*]}; run as root to install them with apt-get, or install them yourself"
	echo "bench-vs-redis: installing ${need_pkgs[*]}"
	apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null ||
		die "apt-get install ${need_pkgs[*]} failed"
fi

# Checked before anything starts: the dev cluster's ports are fixed.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$REDIS_PORT" "$REDIS_AOF_PORT" "$SINGLE_RESP_PORT" "${SINGLE_HTTP##*:}" \
	"${SINGLE_RPC##*:}" "${SINGLE_GOSSIP##*:}" "${DEV_PORTS[@]}"; do
	if port_busy "$p"; then
		die "port 127.0.0.1:$p is in use; stop what listens there (another ringkv dev?) and re-run"
	fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-redis.XXXXXX")
PIDS=()    # background processes, stopped in reverse order at exit
BENCH_PID= # the redis-benchmark running, if any
# A run that takes longer than this is stuck: even 50 req/s finish in time.
BENCH_TIMEOUT=$((600 + BENCH_N / 50))

# stop_pid sends SIGTERM and waits up to $2 seconds, then SIGKILLs.
stop_pid() {
	local pid=$1 secs=$2 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench-vs-redis: pid $pid still running ${secs}s after SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	[[ -n $BENCH_PID ]] && stop_pid "$BENCH_PID" 10
	# ringkv dev stops its children one at a time (up to 30 s each).
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${PIDS[i]}" 100
	done
	if [[ $BENCH_KEEP == 1 || $rc -ne 0 ]]; then
		echo "bench-vs-redis: data and logs kept in $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ -n ${BENCH_RINGKV:-} ]]; then
	[[ -x $BENCH_RINGKV ]] || die "BENCH_RINGKV=$BENCH_RINGKV is not an executable"
	RINGKV=$BENCH_RINGKV
else
	command -v go >/dev/null || die "go is needed to build ringkv (or set BENCH_RINGKV)"
	echo "bench-vs-redis: building ringkv"
	go build -o "$TMP/ringkv" ./cmd/ringkv || die "go build ./cmd/ringkv failed"
	RINGKV=$TMP/ringkv
fi

# --- start the targets ---------------------------------------------------------

# wait_for runs "$@" every 0.1 s until it succeeds, for at most $1 seconds.
wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
redis_up() { [[ $(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null) == PONG ]]; }
readyz_ok() { [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$1/readyz") == 200 ]]; }
alive() { kill -0 "$1" 2>/dev/null; }

# start_redis NAME PORT EXTRA-ARGS...
start_redis() {
	local name=$1 port=$2
	shift 2
	mkdir -p "$TMP/$name"
	redis-server --bind 127.0.0.1 --port "$port" --dir "$TMP/$name" \
		--daemonize no --protected-mode yes "$@" >"$TMP/$name.log" 2>&1 &
	PIDS+=($!)
	wait_for 30 redis_up "$port" || {
		tail -n 20 "$TMP/$name.log" >&2
		die "$name (redis-server on port $port) did not answer PING within 30 s"
	}
}

echo "bench-vs-redis: starting redis, redis-aof, the ringkv dev cluster and a single ringkv node in $TMP"
start_redis redis "$REDIS_PORT" --save '' --appendonly no
start_redis redis-aof "$REDIS_AOF_PORT" --save '' --appendonly yes --appendfsync always

# storage.fsync is always by default; set it anyway so a changed default
# cannot make the comparison unfair. ringkv dev passes its environment on
# to its children.
RINGKV_STORAGE_FSYNC=always "$RINGKV" dev --data "$TMP/dev" >"$TMP/dev.log" 2>&1 &
DEV_PID=$!
PIDS+=("$DEV_PID")

RINGKV_STORAGE_FSYNC=always RINGKV_CLUSTER_REPLICATION=1 "$RINGKV" server --name s1 \
	--data-dir "$TMP/single" --http "$SINGLE_HTTP" --resp "127.0.0.1:$SINGLE_RESP_PORT" \
	--rpc "$SINGLE_RPC" --gossip "$SINGLE_GOSSIP" >"$TMP/single.log" 2>&1 &
SINGLE_PID=$!
PIDS+=("$SINGLE_PID")

# ready_or_die PID LOG ADDR NAME: wait up to 90 s for GET /readyz = 200.
ready_or_die() {
	local pid=$1 log=$2 addr=$3 name=$4 i
	for ((i = 0; i < 900; i++)); do
		readyz_ok "$addr" && return 0
		alive "$pid" || {
			tail -n 20 "$log" >&2
			die "$name exited before it was ready (log: $log)"
		}
		sleep 0.1
	done
	tail -n 20 "$log" >&2
	die "$name: GET http://$addr/readyz did not answer 200 within 90 s (log: $log)"
}
for a in 127.0.0.1:8001 127.0.0.1:8002 127.0.0.1:8003; do
	ready_or_die "$DEV_PID" "$TMP/dev.log" "$a" "ringkv dev node at $a"
done
ready_or_die "$SINGLE_PID" "$TMP/single.log" "$SINGLE_HTTP" "the single ringkv node"

# --- wait until the cluster has settled ----------------------------------------

# The processes whose CPU a cluster run is charged: the dev supervisor and
# the three nodes it started (its children; it does not restart one that
# exits, and every run first checks that all of them still run).
mapfile -t dev_children < <(pgrep -P "$DEV_PID")
((${#dev_children[@]} == 3)) || die "ringkv dev (pid $DEV_PID) has ${#dev_children[@]} child processes, expected its 3 nodes"
CLUSTER_PIDS="$DEV_PID ${dev_children[*]}"

# /readyz 200 on a node says that the cluster's plan, as that node knows
# it, has it among its serving members (n1, started with --bootstrap,
# answers while that plan holds it alone). It does not
# say that the other nodes installed the same plan, that no change is in
# progress, that no partition is still being pulled, or that gossip sees
# all three alive; a round run before all that holds would measure
# partition transfers too. The cluster has settled when every node
# reports, on its /metrics:
#   ringkv_plan_stable 1                 no membership change in progress
#   ringkv_ring_members 3                its serving ring has all three nodes
#   ringkv_live_members 3                gossip sees all three alive
#   ringkv_transfer_partitions{state="pending"} 0, {state="inflight"} 0
#                                        it pulls no partition
# and all three follow the same plan (equal ringkv_plan_epoch).
SETTLE_TIMEOUT=120
SETTLE_STATE= # each node's figures at the last poll
SETTLE_EPOCH=

# settle_state ADDR prints the node's "stable members live pending inflight
# epoch" from its /metrics ("-" for a figure it did not give).
settle_state() {
	curl -s -m 2 "http://$1/metrics" | awk '
		$1 == "ringkv_plan_stable" { v[1] = $2 }
		$1 == "ringkv_ring_members" { v[2] = $2 }
		$1 == "ringkv_live_members" { v[3] = $2 }
		$1 == "ringkv_transfer_partitions{state=\"pending\"}" { v[4] = $2 }
		$1 == "ringkv_transfer_partitions{state=\"inflight\"}" { v[5] = $2 }
		$1 == "ringkv_plan_epoch" { v[6] = $2 }
		END { for (i = 1; i <= 6; i++) printf "%s%s", (i in v) ? v[i] : "-", i < 6 ? " " : "\n" }'
}

# cluster_settled reports whether the dev cluster has settled; it leaves
# every node's figures in SETTLE_STATE for the messages.
cluster_settled() {
	local port st stable members live pending inflight epoch first='' ok=1
	SETTLE_STATE=
	for port in 8001 8002 8003; do
		st=$(settle_state "127.0.0.1:$port")
		read -r stable members live pending inflight epoch <<<"$st"
		SETTLE_STATE+="${SETTLE_STATE:+; }:$port plan_stable=$stable ring_members=$members live_members=$live pending=$pending inflight=$inflight plan_epoch=$epoch"
		[[ $stable == 1 && $members == 3 && $live == 3 && $pending == 0 && $inflight == 0 ]] || ok=0
		[[ -z $first ]] && first=$epoch
		[[ $epoch == "$first" ]] || ok=0
	done
	SETTLE_EPOCH=$first
	((ok))
}

# wait_settled polls every 0.5 s (the polls cost the nodes CPU that the
# transfers need) for at most SETTLE_TIMEOUT seconds: a poll count and the
# clock both bound it, since a poll of nodes that hang takes up to 6 s.
wait_settled() {
	local i p start=$SECONDS
	for ((i = 0; i < SETTLE_TIMEOUT * 2 && SECONDS - start < SETTLE_TIMEOUT; i++)); do
		if cluster_settled; then
			SETTLE_SECS=$((SECONDS - start))
			return 0
		fi
		for p in $CLUSTER_PIDS; do
			alive "$p" || {
				tail -n 20 "$TMP/dev.log" >&2
				die "a ringkv dev process (pid $p) exited while the cluster settled (log: $TMP/dev.log)"
			}
		done
		sleep 0.5
	done
	tail -n 5 "$TMP"/dev/n*.log >&2
	die "the dev cluster did not settle within $SETTLE_TIMEOUT s after /readyz (a stable plan of 3 members on all 3 nodes, all alive, no partition pending or in flight); last seen: $SETTLE_STATE"
}
wait_settled
echo "bench-vs-redis: dev cluster settled ${SETTLE_SECS} s after all its nodes answered /readyz"

# Each target's RESP port and the processes its CPU is read from, in
# one table.
declare -A TARGET_PORT=([redis]=$REDIS_PORT [redis-aof]=$REDIS_AOF_PORT [cluster]=$CLUSTER_RESP_PORT [single]=$SINGLE_RESP_PORT)
declare -A TARGET_PIDS=([redis]=${PIDS[0]} [redis-aof]=${PIDS[1]} [cluster]=$CLUSTER_PIDS [single]=$SINGLE_PID)
CLK_TCK=$(getconf CLK_TCK)
is_uint "$CLK_TCK" || die "getconf CLK_TCK gave '$CLK_TCK', not a positive integer"

# cpu_ticks PID... sets TICKS to the user+system CPU time (fields 14 and
# 15 of /proc/PID/stat, in clock ticks) of the processes, summed; it
# fails when one of them is gone. Builtins only: no process is started
# (see run_test).
cpu_ticks() {
	local pid line f
	TICKS=0
	for pid; do
		read -r line 2>/dev/null <"/proc/$pid/stat" || return 1
		# Field 2, the command name, is in parentheses and may hold
		# spaces; the fields after its last ")" start with field 3.
		read -r -a f <<<"${line##*) }"
		# utime, stime, and cutime, cstime: the children it waited
		# for (redis-server's AOF rewrite runs in a forked child).
		TICKS=$((TICKS + f[11] + f[12] + f[13] + f[14]))
	done
}

# count_alive sets ALIVE to the number of this shell's background
# processes (PIDS) still running. Builtins only.
count_alive() {
	local p
	ALIVE=0
	for p in "${PIDS[@]}"; do
		if alive "$p"; then ALIVE=$((ALIVE + 1)); fi
	done
}

# child_cpu_us FILE sets CHILD_US to the CPU time (user+system, µs) of this
# shell's waited-for children, from the second line of `times` in FILE
# ("XmY.ZZZs XmY.ZZZs"; the decimal point follows the locale).
child_cpu_us() {
	local line u s part us=0
	{
		read -r line
		read -r u s
	} <"$1" || return 1
	for part in "$u" "$s"; do
		[[ $part =~ ^([0-9]+)m([0-9]+)[.,]([0-9]{3})s$ ]] || return 1
		us=$((us + ((10#${BASH_REMATCH[1]} * 60 + 10#${BASH_REMATCH[2]}) * 1000 + 10#${BASH_REMATCH[3]}) * 1000))
	done
	CHILD_US=$us
}

# --- run ----------------------------------------------------------------------

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	commit+="+dirty"
fi
# Each test (set, get) is its own run: redis-benchmark -t TEST $BENCH_ARGS.
BENCH_ARGS="-c $BENCH_CLIENTS -n $BENCH_N -r 100000 -d 100 -q --csv"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
{
	echo "date:       $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "commit:     $commit"
	echo "nproc:      $(nproc)"
	echo "redis:      $(redis-server --version | sed -n 's/.*\(v=[^ ]*\).*/\1/p') ($(redis-benchmark --version 2>/dev/null | head -n 1 || echo 'redis-benchmark version unknown'))"
	echo "command:    redis-benchmark -t TEST $BENCH_ARGS -h 127.0.0.1 -p PORT"
	echo "rounds:     $BENCH_ROUNDS (in each: ${TARGETS[*]}; per target TEST=set, then TEST=get)"
	echo "cpu:        user+system from /proc/PID/stat (CLK_TCK $CLK_TCK) around each run; cluster: pids $CLUSTER_PIDS summed"
	echo "settled:    cluster ${SETTLE_SECS} s after /readyz (plan epoch $SETTLE_EPOCH on all 3 nodes, stable, nothing pending)"
	echo "loadavg before: $LOAD_BEFORE"
} | tee "$TMP/header.txt"

# results.tsv: one line per run: round target test rps p50 p99 (ms; "-"
# when not printed) server_us client_us (CPU over the whole run, µs; "-"
# when it could not be read).
: >"$TMP/results.tsv"

# run_test ROUND TARGET TEST runs redis-benchmark -t TEST against TARGET,
# appends the run's line to results.tsv and prints it; it fails, having
# said why, when the run failed.
run_test() {
	local round=$1 t=$2 test=$3 port out p srv_before='' srv=- cli=- cli_before alive_before bench_ok=1
	local -a pids
	port=${TARGET_PORT[$t]}
	read -r -a pids <<<"${TARGET_PIDS[$t]}"
	out=$TMP/bench-$round-$t-$test.csv
	for p in "${pids[@]}"; do
		if ! alive "$p"; then
			echo "bench-vs-redis: round $round: $t (pid $p) is no longer running; $test skipped" >&2
			return 1
		fi
	done
	# The client's CPU is the change in this shell's children's times
	# (`times`, second line) across the run: timeout and the
	# redis-benchmark it waits for. No other process is started or waited
	# for between the two readings, so nothing else is counted, unless a
	# target's server (a child too) exits and is reaped meanwhile: then
	# the client's figure is left out.
	cpu_ticks "${pids[@]}" && srv_before=$TICKS
	count_alive
	alive_before=$ALIVE
	times >"$TMP/times.before"
	# In the background so that a signal to this script is handled at
	# once (bash runs traps only between foreground commands).
	# shellcheck disable=SC2086 # BENCH_ARGS is split into words on purpose
	timeout "$BENCH_TIMEOUT" redis-benchmark -t "$test" $BENCH_ARGS -h 127.0.0.1 -p "$port" >"$out" 2>"$out.err" &
	BENCH_PID=$!
	wait "$BENCH_PID" || bench_ok=0
	BENCH_PID=
	times >"$TMP/times.after"
	if [[ -n $srv_before ]] && cpu_ticks "${pids[@]}"; then
		srv=$(((TICKS - srv_before) * 1000000 / CLK_TCK))
	fi
	count_alive
	if ((ALIVE == alive_before)) && child_cpu_us "$TMP/times.before"; then
		cli_before=$CHILD_US
		child_cpu_us "$TMP/times.after" && cli=$((CHILD_US - cli_before))
	fi
	# redis-benchmark 7 exits 1 at the first error reply ("Error from
	# server: ..." on stdout), so a failed request lands here too.
	if ((!bench_ok)); then
		echo "bench-vs-redis: round $round: redis-benchmark -t $test against $t (port $port) failed:" >&2
		tail -n 5 "$out.err" "$out" >&2
		return 1
	fi
	# redis-benchmark 7 prints a header row naming its columns
	# ("test","rps","avg_latency_ms",...,"p50_latency_ms",...); older
	# versions print only "TEST","rps" rows. Columns are found by name.
	if ! awk -F, -v round="$round" -v t="$t" -v want="${test^^}" -v srv="$srv" -v cli="$cli" '
		{ for (i = 1; i <= NF; i++) gsub(/"/, "", $i) }
		$1 == "test" { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$1 == want {
			rps = ("rps" in col) ? $(col["rps"]) : $2
			p50 = ("p50_latency_ms" in col) ? $(col["p50_latency_ms"]) : "-"
			p99 = ("p99_latency_ms" in col) ? $(col["p99_latency_ms"]) : "-"
			if (rps !~ /^[0-9.]+$/) exit 1
			printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", round, t, $1, rps, p50, p99, srv, cli
			n++
		}
		END { exit n == 1 ? 0 : 1 }' "$out" >>"$TMP/results.tsv"; then
		echo "bench-vs-redis: round $round: no ${test^^} figures from redis-benchmark against $t:" >&2
		head -n 5 "$out" "$out.err" >&2
		return 1
	fi
	tail -n 1 "$TMP/results.tsv" | awk -F'\t' -v n="$BENCH_N" '
		function per(us) { return us == "-" ? "-" : sprintf("%.1f", us / n) }
		{ printf "  round %s %-9s %s %10.0f req/s  p50 %s  p99 %s  CPU µs/req: server %s client %s\n",
			$1, $2, $3, $4, $5, $6, per($7), per($8) }'
}

failed=0
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	for t in "${TARGETS[@]}"; do
		for test in set get; do
			run_test "$round" "$t" "$test" || failed=1
		done
	done
	echo "  round $round done, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
echo "loadavg after:  $LOAD_AFTER"
# A node that logged errors or warnings during the runs is worth a look
# before the figures are believed.
for log in "$TMP"/dev/n*.log "$TMP/single.log"; do
	errs=$(grep -c 'level=ERROR' "$log" || true)
	warns=$(grep -c 'level=WARN' "$log" || true)
	if ((errs + warns > 0)); then
		echo "note: $(basename "$log"): $errs error and $warns warning lines; the first ones:"
		# -m 3, not head: under pipefail a grep cut short by head's exit
		# (SIGPIPE, once a log holds more than a pipe's worth of such
		# lines) would end the script before its report.
		grep -m 3 -E 'level=(ERROR|WARN)' "$log" | cut -c 1-300 | sed 's/^/    /'
	fi
done

# --- report -------------------------------------------------------------------

# Median per target, test and column over the rounds (each column on its
# own), then the tables and the ratios.
echo
awk -F'\t' -v order="${TARGETS[*]}" -v n="$BENCH_N" '
	function median(list,    a, n, i, j, x) {
		n = split(list, a, " ")
		if (n == 0) return ""
		for (i = 2; i <= n; i++) {      # insertion sort: n is the rounds
			x = a[i] + 0
			for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j + 1] = a[j]
			a[j + 1] = x
		}
		return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function fmt(m, f) { return m == "" ? "-" : sprintf(f, m) }
	{
		k = $2 SUBSEP $3
		rps[k] = rps[k] " " $4
		if ($5 != "-") p50[k] = p50[k] " " $5
		if ($6 != "-") p99[k] = p99[k] " " $6
		if ($7 != "-") srv[k] = srv[k] " " $7 / n
		if ($8 != "-") cli[k] = cli[k] " " $8 / n
		runs[k]++
	}
	END {
		nt = split(order, tg, " ")
		print "| target | SET req/s | SET p50 ms | SET p99 ms | GET req/s | GET p50 ms | GET p99 ms | runs |"
		print "|---|--:|--:|--:|--:|--:|--:|--:|"
		for (i = 1; i <= nt; i++) {
			t = tg[i]; line = "| " t
			for (s = 1; s <= 2; s++) {
				k = t SUBSEP (s == 1 ? "SET" : "GET")
				m = median(rps[k]); M[k] = m
				line = line " | " fmt(m, "%.0f")
				line = line " | " fmt(median(p50[k]), "%.3f")
				line = line " | " fmt(median(p99[k]), "%.3f")
				C[k] = median(srv[k])
			}
			print line " | " nruns(t) " |"
		}
		print ""
		print "| ratio (median req/s) | value |"
		print "|---|--:|"
		ratios(M)
		print ""
		print "| target | SET server CPU µs/req | SET client CPU µs/req | GET server CPU µs/req | GET client CPU µs/req | runs |"
		print "|---|--:|--:|--:|--:|--:|"
		for (i = 1; i <= nt; i++) {
			t = tg[i]; line = "| " (t == "cluster" ? "cluster (3 nodes summed)" : t)
			for (s = 1; s <= 2; s++) {
				k = t SUBSEP (s == 1 ? "SET" : "GET")
				line = line " | " fmt(C[k], "%.1f") " | " fmt(median(cli[k]), "%.1f")
			}
			print line " | " nruns(t) " |"
		}
		print ""
		print "server: user+system CPU of the target'"'"'s processes during the run over its requests"
		print "(cluster: the sum over its three nodes and the ringkv dev supervisor);"
		print "client: redis-benchmark'"'"'s, under timeout. Medians over the rounds."
		print ""
		print "| ratio (median server CPU µs per request) | value |"
		print "|---|--:|"
		ratios(C)
	}
	# ratios prints the four ratios the targets are stated in, of the
	# medians in A.
	function ratios(A) {
		ratio(A, "cluster", "SET", "redis-aof", "SET")
		ratio(A, "cluster", "GET", "redis", "GET")
		ratio(A, "single", "SET", "redis-aof", "SET")
		ratio(A, "single", "GET", "redis", "GET")
	}
	# nruns: the runs that completed, "SET/GET" when the two differ.
	function nruns(t,    a, b) {
		a = runs[t SUBSEP "SET"] + 0; b = runs[t SUBSEP "GET"] + 0
		return a == b ? a : a "/" b
	}
	function ratio(V, a, ta, b, tb,    x, y) {
		x = V[a SUBSEP ta]; y = V[b SUBSEP tb]
		printf "| %s %s / %s %s | %s |\n", a, ta, b, tb, (x == "" || y == "" || y == 0) ? "-" : sprintf("%.2f", x / y)
	}' "$TMP/results.tsv" | tee "$TMP/table.md"
if ((failed)); then
	die "some runs failed (see above); the table holds the runs that completed"
fi
