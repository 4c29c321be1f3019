#!/usr/bin/env bash
# bench/http/run.sh — the side-by-side HTTP ingest benchmark of issue 2 ("make bench").
#
# Usage: bench/http/run.sh /abs/path/to/outpost
#
# For each server it starts the server pinned to one CPU (taskset), drives it with
# `wrk -t1` pinned to the other CPU over loopback, and measures:
#   (a) POST /v1/readings, 1 reading per request, 64 keep-alive connections: req/s;
#   (b) the same with 100 readings per request: readings/s;
#   (c) 1 reading per request over 1 connection: p50/p99 latency;
# plus server CPU per request (utime+stime of the server's process tree from
# /proc/PID/stat, before and after each run, divided by the requests answered), RSS idle
# (1 s after ready) and peak (VmHWM after all runs; both summed over the process tree),
# and start-up time from spawn to the first 200 of its readiness URL (probe.py, median of
# several starts). Servers: outpost with store.sync=full and =normal (fresh data dir
# each), the design documents' Python service (bench/peers: FastAPI/uvicorn and
# Flask/gunicorn, one worker each, data in memory only), and nginx answering a fixed 201
# (the ceiling of an HTTP server on this machine), and outpost-tls: store.sync=full over
# HTTPS (TLS 1.3, a self-signed ECDSA P-256 certificate made for the run), measured on
# (a) and (c) only, whose ratio to outpost-full is the cost of TLS; and outpost-rules:
# outpost-full with 100 rules over the benchmark's sensors (50 threshold, 50 window;
# bench/http/rules.sh), measured on (a) and (b) like outpost-full (so both batch runs
# start from as much stored data), whose (b) ratio to outpost-full is the cost of the
# rule engine on ingest (issue 5); and mhd-suspend: libmicrohttpd alone, answering each
# POST after a second thread resumed it (bench/http/mhd_suspend.c), the ceiling of the
# HTTP library in the mode outpost uses. A server that is missing or fails
# gets "n/a" and the run goes on. The table goes to stdout and to
# bench/results/http-<date>.txt; raw wrk output and server logs go to
# bench/results/http-<date>.raw/.
#
# Environment (all optional):
#   BENCH_QUICK=1          smoke run: 2 s per measurement, 3 start-ups, short quiet wait
#   BENCH_DURATION=S       seconds per measured run (default 10; 2 with BENCH_QUICK)
#   BENCH_WARMUP=S         seconds of unmeasured load before the first run (default 2; 1 quick)
#   BENCH_CONNS=N          connections for (a) and (b) (default 64)
#   BENCH_REPEAT=N         runs per workload; the run with the median rate is reported (default 1)
#   BENCH_STARTS=N         start-ups measured per server (default 5; 3 quick)
#   BENCH_SERVERS="..."    subset/order of: outpost-full outpost-normal outpost-tls outpost-rules
#                          fastapi flask nginx mhd-suspend
#   BENCH_MHD_SUSPEND=BIN  the mhd-suspend server (default: bench/http/bench_mhd_suspend beside
#                          the outpost binary)
#   BENCH_SERVER_CPU=0 BENCH_CLIENT_CPU=1
#   BENCH_QUIET_PCT=10     before each run, wait until the machine uses less than this % of
#   BENCH_QUIET_WAIT=S     one core, for at most S s (default 30; 5 quick)
#   BENCH_NOISE_MAX=30     redo a run when other processes used more than this % of one core
#   BENCH_NOISE_REDO=2     ... at most this many times (the least noisy attempt is kept)
#   BENCH_DATA_ROOT=DIR    where outpost's data dirs go (default /var/tmp; must not be tmpfs
#                          for sync=full to mean anything)
#   BENCH_OUT=FILE         results file (default bench/results/http-<date>.txt)

set -uo pipefail   # no -e: a failing server must turn into "n/a", not end the run

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PEERS="$ROOT/bench/peers"
PY=/usr/bin/python3          # Debian's Python: its flask/fastapi/uvicorn/gunicorn
OUTPOST=${1:-}
# Built beside outpost (bench/http/CMakeLists.txt).
MHD_SUSPEND=${BENCH_MHD_SUSPEND:-$(dirname "${OUTPOST:-.}")/bench/http/bench_mhd_suspend}

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    DUR=${BENCH_DURATION:-2}; WARMUP=${BENCH_WARMUP:-1}; STARTS=${BENCH_STARTS:-3}
    QUIET_WAIT=${BENCH_QUIET_WAIT:-5}
else
    DUR=${BENCH_DURATION:-10}; WARMUP=${BENCH_WARMUP:-2}; STARTS=${BENCH_STARTS:-5}
    QUIET_WAIT=${BENCH_QUIET_WAIT:-30}
fi
CONNS=${BENCH_CONNS:-64}
REPEAT=${BENCH_REPEAT:-1}
SERVERS=${BENCH_SERVERS:-"outpost-full outpost-normal outpost-tls outpost-rules fastapi flask nginx mhd-suspend"}
SCPU=${BENCH_SERVER_CPU:-0}
CCPU=${BENCH_CLIENT_CPU:-1}
QUIET_PCT=${BENCH_QUIET_PCT:-10}
NOISE_MAX=${BENCH_NOISE_MAX:-30}
NOISE_REDO=${BENCH_NOISE_REDO:-2}
DATA_ROOT=${BENCH_DATA_ROOT:-/var/tmp}
STAMP=$(date +%Y-%m-%d-%H%M%S)
RESULTS_DIR="$ROOT/bench/results"
OUT=${BENCH_OUT:-$RESULTS_DIR/http-$STAMP.txt}
RAW="${OUT%.txt}.raw"
HZ=$(getconf CLK_TCK)

for tool in wrk nginx taskset ps openssl "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: '$tool' not found (scripts/deps.sh bench installs it)" >&2; exit 2; }
done
PROBE=(taskset -c "$CCPU" "$PY" "$HERE/probe.py")
WORK=""
DATA_BASE=""

# ---------------------------------------------------------------- processes and cleanup
PIDS=()          # every process this script started and may still need to end
NOTES=()         # odd things seen, printed under the table

note() { NOTES+=("$*"); echo "  note: $*" >&2; }
untrack() { local i; for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" = "$1" ] && unset "PIDS[$i]"; done; PIDS=("${PIDS[@]}"); }
log() { echo "[bench] $*" >&2; }

alive() {   # PID is running (not gone, not a zombie)
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ]
}

tree() {    # PID and all its descendants
    local c
    echo "$1"
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree "$c"; done
}

# stop_tree PID: SIGTERM the root, wait up to 10 s, then SIGKILL it and every descendant
# seen before the signal. Sets STOP_RC (the root's exit status, if it is our child) and
# STOP_MS (time to exit after SIGTERM).
stop_tree() {
    local root=$1 pids p i t0
    pids=$(tree "$root")
    t0=$(date +%s%N)
    kill -TERM "$root" 2>/dev/null
    for ((i = 0; i < 1000; i++)); do alive "$root" || break; sleep 0.01; done
    STOP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    for p in $pids; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
    wait "$root" 2>/dev/null; STOP_RC=$?
    untrack "$root"
    for ((i = 0; i < 100; i++)); do
        local left=0
        for p in $pids; do alive "$p" && left=1; done
        [ $left = 0 ] && break; sleep 0.01
    done
}

cleanup() {
    local i p f
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        p=${PIDS[$i]}
        alive "$p" && stop_tree "$p"
    done
    # nginx must never outlive the benchmark: check every pid file we gave it.
    for f in ${WORK:+"$WORK"/nginx-*/nginx.pid}; do
        [ -f "$f" ] || continue
        p=$(cat "$f" 2>/dev/null)
        [ -n "$p" ] && alive "$p" && { echo "[bench] nginx $p still running: killing it" >&2; kill -KILL "$p"; }
    done
    [ -n "$WORK" ] && rm -rf "$WORK"
    [ -n "$DATA_BASE" ] && rm -rf "$DATA_BASE"
}
trap cleanup EXIT
trap 'echo "[bench] interrupted" >&2; exit 130' INT TERM

mkdir -p "$RESULTS_DIR" "$RAW" || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench.XXXXXX") || exit 2
DATA_BASE=$(mktemp -d "$DATA_ROOT/outpost-bench-data.XXXXXX") || exit 2

# ---------------------------------------------------------------- measurement helpers
cpu_ticks() {   # utime+stime (ticks) summed over PIDs
    local p v t=0
    for p in "$@"; do
        v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

mem_kb() {      # mem_kb FIELD PIDS...: sum of /proc/PID/status FIELD (VmRSS, VmHWM) in kB
    local f=$1; shift
    local p v t=0
    for p in "$@"; do
        v=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

sys_busy() {    # busy ticks of the whole machine (all CPUs, everything but idle and iowait)
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

children_ms() { # CPU ms of this shell's reaped children, from the `times` builtin written to $1
    awk 'NR == 2 { s = 0; for (i = 1; i <= NF; i++) { split($i, a, "m"); s += a[1] * 60 + substr(a[2], 1, length(a[2]) - 1) }
                   printf "%d\n", s * 1000 }' "$1"
}

# quiet_gate: wait until the machine is nearly idle (other engineers share it).
quiet_gate() {
    local deadline b0 b1 pct
    deadline=$(( $(date +%s) + QUIET_WAIT ))
    while :; do
        b0=$(sys_busy); sleep 0.5; b1=$(sys_busy)
        pct=$(( (b1 - b0) * 100 * 2 / HZ ))        # % of one core over 0.5 s
        [ "$pct" -lt "$QUIET_PCT" ] && { GATE_PCT=$pct; return 0; }
        [ "$(date +%s)" -ge "$deadline" ] && { GATE_PCT=$pct; return 1; }
    done
}

kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -1; }

# run_tracked OUTFILE CMD...: run CMD in the background with stdout to OUTFILE, recorded
# in PIDS so that cleanup can end it if the benchmark is interrupted; returns its status.
run_tracked() {
    local out=$1; shift
    "$@" >"$out" &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid"
    local rc=$?
    untrack "$pid"
    return $rc
}

# one_run NAME SCRIPT CONNS LATENCY(0|1) SECONDS PORT PIDS... -> sets RUN_LINE to one
# "key=value ..." line (empty when wrk gave no result). wrk runs pinned to the client CPU.
one_run() {
    local name=$1 script=$2 conns=$3 lat=$4 secs=$5 port=$6; shift 6
    local pids=("$@") s0 s1 y0 y1 w0 w1 out res lflag=()
    RUN_LINE=""
    [ "$lat" = 1 ] && lflag=(--latency)
    out="$RAW/$name.wrk.txt"
    quiet_gate || log "$name: machine still busy before the run (${GATE_PCT}% of a core after ${QUIET_WAIT}s); going on"
    y0=$(sys_busy); s0=$(cpu_ticks "${pids[@]}")
    times >"$WORK/t0"
    taskset -c "$CCPU" wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s "${lflag[@]}" \
        -s "$HERE/$script" "$SCHEME://127.0.0.1:$port/v1/readings" >>"$out" 2>&1 &
    local wpid=$!
    PIDS+=("$wpid")
    wait "$wpid"
    untrack "$wpid"
    times >"$WORK/t1"
    s1=$(cpu_ticks "${pids[@]}"); y1=$(sys_busy)
    res=$(grep '^WRKRESULT' "$out" | tail -1)
    [ -z "$res" ] && return 0
    w0=$(children_ms "$WORK/t0"); w1=$(children_ms "$WORK/t1")
    RUN_LINE=$(awk -v res="$res" -v sd=$((s1 - s0)) -v yd=$((y1 - y0)) -v wms=$((w1 - w0)) -v hz="$HZ" 'BEGIN {
        n = split(res, f, " "); for (i = 2; i <= n; i++) { split(f[i], kv, "="); r[kv[1]] = kv[2] }
        dur = r["duration_us"] / 1e6; reqs = r["requests"]
        bad = r["err_status"]; ok = reqs - bad; if (ok < 0) ok = 0
        errs = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"] + r["err_timeout"]
        srv_ms = sd * 1000 / hz; sys_ms = yd * 1000 / hz
        other = sys_ms - srv_ms - wms; if (other < 0) other = 0
        printf "rps=%.1f readings_s=%.1f reqs=%d errs=%d errdetail=%d/%d/%d/%d/%d p50_ms=%.3f p99_ms=%.3f ",
            ok / dur, ok * r["readings_per_request"] / dur, reqs, errs, r["err_connect"], r["err_read"],
            r["err_write"], r["err_status"], r["err_timeout"], r["lat_p50_us"] / 1000, r["lat_p99_us"] / 1000
        printf "cpu_us_req=%.2f srv_pct=%.0f wrk_pct=%.0f other_pct=%.0f dur_s=%.2f\n",
            (reqs > 0 ? srv_ms * 1000 / reqs : 0), srv_ms / dur / 10, wms / dur / 10, other / dur / 10, dur
    }')
}

# measure SERVER WORKLOAD SCRIPT CONNS LATENCY PORT PIDS... : REPEAT runs (each redone up
# to NOISE_REDO times while other processes were busy), the run with the median rate is
# stored in R[SERVER.WORKLOAD.key].
measure() {
    local srv=$1 wl=$2 script=$3 conns=$4 lat=$5 port=$6; shift 6
    local pids=("$@") rep try line best runs=() other
    for ((rep = 1; rep <= REPEAT; rep++)); do
        best=""
        for ((try = 0; try <= NOISE_REDO; try++)); do
            one_run "$srv.$wl" "$script" "$conns" "$lat" "$DUR" "$port" "${pids[@]}"
            line=$RUN_LINE
            if [ -z "$line" ]; then
                alive "${pids[0]}" || { note "$srv: server exited during workload $wl"; return 1; }
                note "$srv.$wl: no WRKRESULT line from wrk (see $RAW/$srv.$wl.wrk.txt)"
                continue
            fi
            echo "  $srv $wl run $rep try $try: $line" >>"$RAW/runs.txt"
            other=$(kv other_pct "$line")
            if [ -z "$best" ] || [ "$other" -lt "$(kv other_pct "$best")" ]; then best=$line; fi
            [ "$other" -le "$NOISE_MAX" ] && break
            log "$srv $wl: other processes used ${other}% of a core during the run; redoing"
        done
        [ -n "$best" ] && runs+=("$best")
        [ -n "$best" ] && [ "$(kv other_pct "$best")" -gt "$NOISE_MAX" ] &&
            note "$srv.$wl: machine busy: other processes used $(kv other_pct "$best")% of a core during the kept run (the least noisy of $try)"
    done
    [ ${#runs[@]} -eq 0 ] && return 1
    line=$(printf '%s\n' "${runs[@]}" | awk '{ split($1, a, "="); print a[2], $0 }' | sort -n |
           awk -v n=${#runs[@]} 'NR == int((n + 1) / 2) { $1 = ""; sub(/^ /, ""); print }')
    local k
    for k in rps readings_s reqs errs errdetail p50_ms p99_ms cpu_us_req srv_pct wrk_pct other_pct; do
        R[$srv.$wl.$k]=$(kv "$k" "$line")
    done
    other=${R[$srv.$wl.other_pct]}
    if [ -z "${R[$srv.other_max]:-}" ] || [ "$other" -gt "${R[$srv.other_max]}" ]; then R[$srv.other_max]=$other; fi
    log "$srv $wl: $line"
    return 0
}

# ---------------------------------------------------------------- servers
declare -A R          # results: R[server.key] and R[server.workload.key]
declare -A DESC STORES

DESC[outpost-full]="outpost run --set store.sync=full (201 after the commit is fsynced)"
DESC[outpost-normal]="outpost run --set store.sync=normal (201 after commit; survives a crash, not power loss)"
DESC[fastapi]="FastAPI under uvicorn, 1 worker, --no-access-log; Pydantic models validate (bench/peers/fastapi_app.py)"
DESC[flask]="Flask under gunicorn, 1 sync worker (no keep-alive); validated by hand (bench/peers/flask_app.py)"
DESC[nginx]="nginx, 1 worker, access_log off, fixed 201 {\"accepted\":1} (bench/http/nginx.conf)"
DESC[mhd-suspend]="libmicrohttpd as outpost drives it (epoll thread; each POST suspended, resumed by a second thread), no parsing, no store (bench/http/mhd_suspend.c)"
DESC[outpost-tls]="outpost run --set store.sync=full over HTTPS (TLS 1.3, ECDSA P-256 certificate)"
DESC[outpost-rules]="outpost run --set store.sync=full with 100 rules (50 threshold, 50 window) over the sensors"
STORES[outpost-full]="disk+fsync"; STORES[outpost-normal]="disk"; STORES[fastapi]="memory!"
STORES[outpost-tls]="disk+fsync"; STORES[outpost-rules]="disk+fsync"
SCHEME=http

scheme_of() { case $1 in outpost-tls) echo https ;; *) echo http ;; esac; }

# make_cert: a self-signed server certificate for 127.0.0.1 in $WORK/tls (outpost-tls).
make_cert() {
    [ -f "$WORK/tls/srv.pem" ] && return 0
    mkdir -p "$WORK/tls" &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$WORK/tls/srv.key" -out "$WORK/tls/srv.pem" -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
}
STORES[flask]="memory!"; STORES[nginx]="nothing"; STORES[mhd-suspend]="nothing"

ready_path() { case $1 in outpost-*|nginx|mhd-suspend) echo /readyz ;; *) echo /data ;; esac; }

# server_cmd NAME PORT DIR: the command line (one word per line) that serves NAME.
server_cmd() {
    local name=$1 port=$2 dir=$3
    case $name in
        outpost-full|outpost-normal)
            printf '%s\n' "$OUTPOST" run --listen "127.0.0.1:$port" --data "$dir" --set "store.sync=${name#outpost-}" ;;
        outpost-rules)
            printf '%s\n' "$OUTPOST" run --listen "127.0.0.1:$port" --data "$dir" --set store.sync=full ;;
        outpost-tls)
            printf '%s\n' "$OUTPOST" run --listen "127.0.0.1:$port" --data "$dir" --set store.sync=full \
                --set "tls.cert=$WORK/tls/srv.pem" --set "tls.key=$WORK/tls/srv.key" ;;
        fastapi)
            printf '%s\n' "$PY" /usr/bin/uvicorn --app-dir "$PEERS" fastapi_app:app --host 127.0.0.1 \
                --port "$port" --workers 1 --no-access-log --log-level warning ;;
        flask)
            printf '%s\n' "$PY" /usr/bin/gunicorn --chdir "$PEERS" -w 1 -k sync -b "127.0.0.1:$port" \
                --log-level warning flask_app:app ;;
        nginx)
            printf '%s\n' nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" ;;
        mhd-suspend)
            printf '%s\n' "$MHD_SUSPEND" "$port" ;;
    esac
}

render_nginx() {   # render_nginx TEMPLATE_OUT PORT DIR
    local user=""
    [ "$(id -u)" = 0 ] && user="user root;"
    sed -e "s|@PORT@|$2|g" -e "s|@DIR@|$3|g" -e "s|@USER@|$user|" "$HERE/nginx.conf" >"$1"
}

# start_server NAME: sets SPID SPORT SDIR, or returns 1 (three tries, a fresh port each).
start_server() {
    local name=$1 try cmd
    for try in 1 2 3; do
        SPORT=$("$PY" "$HERE/probe.py" freeport)
        case $name in
            outpost-*) SDIR=$(mktemp -d "$DATA_BASE/$name.XXXX") ;;
            nginx) SDIR=$(mktemp -d "$WORK/nginx-XXXX"); render_nginx "$SDIR/nginx.conf" "$SPORT" "$SDIR" ;;
            *) SDIR="" ;;
        esac
        mapfile -t cmd < <(server_cmd "$name" "$SPORT" "$SDIR")
        env -u PYTHONPATH -u PYTHONHOME taskset -c "$SCPU" "${cmd[@]}" >>"$RAW/$name.log" 2>&1 </dev/null &
        SPID=$!
        PIDS+=("$SPID")
        if "${PROBE[@]}" wait "$SPORT" "$(ready_path "$name")" 30 "$SPID"; then
            return 0
        fi
        log "$name: not ready on port $SPORT (try $try); see $RAW/$name.log"
        alive "$SPID" && stop_tree "$SPID"
    done
    return 1
}

versions() {
    echo "  wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}'); nginx: $(nginx -v 2>&1 | sed 's/.*nginx\///')"
    echo "  python: $("$PY" -c 'import sys, flask, fastapi, uvicorn, gunicorn, pydantic
try:
    import uvloop; loop = "uvloop " + uvloop.__version__
except ImportError:
    loop = "asyncio (no uvloop)"
try:
    import httptools; http = "httptools " + httptools.__version__
except ImportError:
    http = "h11 (no httptools)"
print("%s; Flask %s, gunicorn %s; FastAPI %s, pydantic %s, uvicorn %s with %s, %s" % (sys.version.split()[0],
      flask.__version__, gunicorn.__version__, fastapi.__version__, pydantic.VERSION, uvicorn.__version__, loop, http))' 2>&1)"
    if [ -n "$OUTPOST" ] && [ -x "$OUTPOST" ]; then
        echo "  outpost: $("$OUTPOST" version 2>&1 | head -1) ($OUTPOST)"
    fi
}

bench_server() {
    local name=$1 path pids
    log "=== $name"
    SCHEME=$(scheme_of "$name")
    if [ "$SCHEME" = https ]; then
        export PROBE_TLS=1
        make_cert || { R[$name.fail]="cannot make a certificate (openssl)"; note "$name: ${R[$name.fail]}"; return; }
    else
        unset PROBE_TLS
    fi
    case $name in
        outpost-*) if [ -z "$OUTPOST" ] || [ ! -x "$OUTPOST" ]; then
                       R[$name.fail]="binary not found: ${OUTPOST:-<none given>}"; note "$name: ${R[$name.fail]}"; return; fi ;;
        mhd-suspend) if [ ! -x "$MHD_SUSPEND" ]; then
                       R[$name.fail]="binary not found: $MHD_SUSPEND"; note "$name: ${R[$name.fail]}"; return; fi ;;
    esac
    if ! start_server "$name"; then
        R[$name.fail]="did not become ready (log: $RAW/$name.log)"; note "$name: ${R[$name.fail]}"; return
    fi
    path=$(ready_path "$name")
    sleep 1
    mapfile -t pids < <(tree "$SPID")
    R[$name.procs]=${#pids[@]}
    R[$name.rss_idle]=$(mem_kb VmRSS "${pids[@]}")

    # Sanity check: the route answers like outpost does.
    local answer
    answer=$("${PROBE[@]}" post "$SPORT" /v1/readings '{"sensor":"bench/check","value":1.5}')
    echo "$name: POST /v1/readings -> $answer" >>"$RAW/runs.txt"
    case $answer in 201*'"accepted":1'*) ;; *) note "$name: sanity POST /v1/readings answered: $answer" ;; esac

    if [ "$name" = outpost-rules ] && ! PROBE="${PROBE[*]}" bash "$HERE/rules.sh" "$SPORT" >>"$RAW/runs.txt" 2>&1; then
        note "$name: could not load the rules (see $RAW/runs.txt)"
    fi
    if [ "$WARMUP" != 0 ]; then
        run_tracked "$RAW/$name.warmup.txt" taskset -c "$CCPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" \
            -s "$HERE/single.lua" "$SCHEME://127.0.0.1:$SPORT/v1/readings"
    fi
    if [ "$name" = outpost-rules ]; then
        # The same sequence as outpost-full up to its batch run (the single
        # run leaves as much data in the store), so that the batch figures
        # compare like for like.
        measure "$name" single single.lua "$CONNS" 0 "$SPORT" "${pids[@]}" &&
        measure "$name" batch batch100.lua "$CONNS" 0 "$SPORT" "${pids[@]}"
    else
        measure "$name" single single.lua "$CONNS" 0 "$SPORT" "${pids[@]}" &&
        { [ "$name" = outpost-tls ] || measure "$name" batch batch100.lua "$CONNS" 0 "$SPORT" "${pids[@]}"; } &&
        measure "$name" lat single.lua 1 1 "$SPORT" "${pids[@]}"
    fi
    alive "$SPID" || note "$name: server is no longer running after the runs"
    R[$name.rss_peak]=$(mem_kb VmHWM "${pids[@]}")
    [ -n "$SDIR" ] && R[$name.data_kb]=$(du -sk "$SDIR" 2>/dev/null | cut -f1)
    stop_tree "$SPID"
    R[$name.term]="rc=$STOP_RC in ${STOP_MS} ms"
    [ "$STOP_RC" != 0 ] && note "$name: exit status $STOP_RC after SIGTERM (took ${STOP_MS} ms)"
    # TLS and rules are measured for their throughput cost only; start-up is outpost-full's.
    case $name in outpost-tls|outpost-rules) rm -rf "$SDIR"; return ;; esac

    # Start-up: spawn to the first 200 of the readiness URL, median of STARTS starts.
    local cmd st render=()
    mapfile -t cmd < <(server_cmd "$name" "{port}" "{fresh}")
    if [ "$name" = nginx ]; then
        render_nginx "$WORK/nginx.conf.in" "{port}" "{fresh}"
        render=(--render "$WORK/nginx.conf.in={fresh}/nginx.conf")
    fi
    run_tracked "$WORK/startup.txt" env -u PYTHONPATH -u PYTHONHOME "${PROBE[@]}" startup --runs "$STARTS" \
        --cpu "$SCPU" --path "$path" "${render[@]}" -- "${cmd[@]}"
    st=$(cat "$WORK/startup.txt")
    echo "$name startup (empty): $st" >>"$RAW/runs.txt"
    R[$name.start]=$(kv median_ms "$st"); R[$name.start_min]=$(kv min_ms "$st"); R[$name.start_max]=$(kv max_ms "$st")
    [ -z "${R[$name.start]}" ] && note "$name: start-up not measured: $st"
    case $name in
        outpost-*)  # a restart on the data the runs left behind
            mapfile -t cmd < <(server_cmd "$name" "{port}" "$SDIR")
            run_tracked "$WORK/startup.txt" "${PROBE[@]}" startup --runs "$STARTS" --cpu "$SCPU" \
                --path "$path" -- "${cmd[@]}"
            st=$(cat "$WORK/startup.txt")
            echo "$name startup (with data): $st" >>"$RAW/runs.txt"
            R[$name.restart]=$(kv median_ms "$st")
            rm -rf "$SDIR" ;;
    esac
}

# ---------------------------------------------------------------- report
fmt_int() { [ -z "${1:-}" ] && { echo n/a; return; }; awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); o = "";
    while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }
fmt() { [ -z "${2:-}" ] && { echo n/a; return; }; awk -v f="$1" -v x="$2" 'BEGIN { printf f, x }'; }
mib() { [ -z "${1:-}" ] && { echo n/a; return; }; awk -v x="$1" 'BEGIN { printf "%.1f", x / 1024 }'; }
ratio() { { [ -z "${1:-}" ] || [ -z "${2:-}" ]; } && { echo n/a; return; }
          awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

report() {
    local s
    echo "outpost HTTP ingest benchmark (bench/http/run.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) CPUs" \
         "($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
    versions
    echo "method: each server pinned to CPU $SCPU (taskset), wrk -t1 pinned to CPU $CCPU, over 127.0.0.1;"
    echo "  ${DUR} s per run after ${WARMUP} s warm-up; median of $REPEAT run(s); a run is redone (up to $NOISE_REDO x)"
    echo "  when other processes used > ${NOISE_MAX}% of a core during it. All servers get the same requests:"
    echo "  POST /v1/readings, (a) 1 reading/request, $CONNS keep-alive connections; (b) 100 readings/request"
    echo "  (~3.8 KB JSON array), $CONNS connections; (c) 1 reading/request, 1 connection (p50/p99)."
    echo "compared:"
    for s in $SERVERS; do printf '  %-15s %s\n' "$s" "${DESC[$s]:-?}"; done
    echo "  outpost data dir on $DATA_ROOT ($(df -T "$DATA_ROOT" | awk 'NR == 2 {print $2}')); fresh for every server start."
    echo
    echo "NOTE: the Python peers (fastapi, flask) keep readings in a dict in memory: NOT durable, a"
    echo "      crash loses everything they acknowledged. nginx stores nothing (it discards the body)."
    echo "      outpost answers 201 only after the SQLite transaction holding the readings committed."
    echo
    printf '%-15s %-10s %9s %7s %5s  %11s %8s %8s  %7s %7s  %6s %6s  %6s %6s %5s\n' \
        server stores "req/s(a)" "us/req" "wrk%" "readings/s" "req/s(b)" "us/req" "p50ms" "p99ms" \
        "RSSidl" "RSSpk" "startm" "errors" "oth%"
    for s in $SERVERS; do
        if [ -n "${R[$s.fail]:-}" ]; then
            printf '%-15s %-10s %s\n' "$s" "${STORES[$s]:-?}" "n/a: ${R[$s.fail]}"; continue
        fi
        local rb=${R[$s.batch.readings_s]:-}
        case $s in nginx|mhd-suspend) [ -n "$rb" ] && rb="discarded" ;; esac
        local errs=$(( ${R[$s.single.errs]:-0} + ${R[$s.batch.errs]:-0} + ${R[$s.lat.errs]:-0} ))
        printf '%-15s %-10s %9s %7s %5s  %11s %8s %8s  %7s %7s  %6s %6s  %6s %6s %5s\n' "$s" "${STORES[$s]:-?}" \
            "$(fmt_int "${R[$s.single.rps]:-}")" "$(fmt %.1f "${R[$s.single.cpu_us_req]:-}")" \
            "${R[$s.single.wrk_pct]:-n/a}" \
            "$( [ "$rb" = discarded ] && echo "(discarded)" || fmt_int "$rb")" \
            "$(fmt_int "${R[$s.batch.rps]:-}")" "$(fmt %.1f "${R[$s.batch.cpu_us_req]:-}")" \
            "$(fmt %.3f "${R[$s.lat.p50_ms]:-}")" "$(fmt %.3f "${R[$s.lat.p99_ms]:-}")" \
            "$(mib "${R[$s.rss_idle]:-}")" "$(mib "${R[$s.rss_peak]:-}")" \
            "$(fmt %.1f "${R[$s.start]:-}")" "$errs" "${R[$s.other_max]:-n/a}"
    done
    echo
    echo "columns: req/s(a) = 2xx responses/s, 1 reading per request, $CONNS conns; us/req = server CPU"
    echo "  (utime+stime of its process tree) per request; wrk% = CPU of the load generator: near 100"
    echo "  means wrk, not the server, was the limit (one wrk thread tops out near 110k req/s here),"
    echo "  so compare us/req there; readings/s and req/s(b) = 100 readings per request; p50/p99 at 1"
    echo "  connection; RSSidl = RSS 1 s after ready, RSSpk = VmHWM after all runs (MiB, summed over"
    echo "  the process tree: forked servers count shared pages twice); startm = spawn to first 200 of"
    echo "  /readyz (/data for the Python peers), median of $STARTS starts, ms; errors = socket errors,"
    echo "  timeouts and non-2xx responses over the three runs; oth% = CPU used by other processes on"
    echo "  the machine during the noisiest of the three runs, % of one core (over ~${NOISE_MAX} = suspect)."
    echo
    echo "ratios (from this run):"
    local m
    for m in full normal; do
        s=outpost-$m
        echo "  $s / nginx,   single reading req/s:     $(ratio "${R[$s.single.rps]:-}" "${R[nginx.single.rps]:-}")" \
             "  (server CPU per request, nginx / $s: $(ratio "${R[nginx.single.cpu_us_req]:-}" "${R[$s.single.cpu_us_req]:-}"))"
        echo "  $s / FastAPI, single reading req/s:     $(ratio "${R[$s.single.rps]:-}" "${R[fastapi.single.rps]:-}")"
        echo "  $s / FastAPI, batched readings/s:       $(ratio "${R[$s.batch.readings_s]:-}" "${R[fastapi.batch.readings_s]:-}")"
    done
    echo "  mhd-suspend / nginx,  single reading req/s (what answering after another thread's work costs"
    echo "    in the HTTP library, with nothing else done): $(ratio "${R[mhd-suspend.single.rps]:-}" "${R[nginx.single.rps]:-}")"
    echo "  outpost-full / mhd-suspend, outpost-normal / mhd-suspend, single reading req/s (what outpost adds):" \
         "$(ratio "${R[outpost-full.single.rps]:-}" "${R[mhd-suspend.single.rps]:-}")," \
         "$(ratio "${R[outpost-normal.single.rps]:-}" "${R[mhd-suspend.single.rps]:-}")"
    echo "  outpost-tls / outpost-full, single reading req/s (the cost of TLS): $(ratio "${R[outpost-tls.single.rps]:-}" "${R[outpost-full.single.rps]:-}")" \
         "  (server CPU per request: TLS ${R[outpost-tls.single.cpu_us_req]:-n/a} us, plain ${R[outpost-full.single.cpu_us_req]:-n/a} us)"
    echo "  outpost-rules / outpost-full, batched readings/s (the cost of 100 rules): $(ratio "${R[outpost-rules.batch.readings_s]:-}" "${R[outpost-full.batch.readings_s]:-}")"
    echo
    echo "issue 2 bars (one run; differences under ~15% are noise on this shared machine):"
    bar() {  # bar TEXT VALUE OP LIMIT [SHOWN]
        local v=$2
        [ -z "$v" ] || [ "$v" = n/a ] && { printf '  %-58s %12s  n/a\n' "$1" n/a; return; }
        v=${v%x}
        printf '  %-58s %12s  %s\n' "$1" "${5:-$2}" "$(awk -v v="$v" -v l="$4" -v op="$3" \
            'BEGIN { ok = (op == ">=") ? v >= l : v <= l; print ok ? "PASS" : "FAIL" }')"
    }
    bar "single req/s, sync=full   >= 0.8x nginx" "$(ratio "${R[outpost-full.single.rps]:-}" "${R[nginx.single.rps]:-}")" ">=" 0.8
    bar "single req/s, sync=normal >= 0.9x nginx" "$(ratio "${R[outpost-normal.single.rps]:-}" "${R[nginx.single.rps]:-}")" ">=" 0.9
    bar "batched readings/s, sync=full >= 1,000,000" "${R[outpost-full.batch.readings_s]:-}" ">=" 1000000 \
        "$(fmt_int "${R[outpost-full.batch.readings_s]:-}")"
    bar "single req/s over TLS >= 0.7x plain (issue 4)" "$(ratio "${R[outpost-tls.single.rps]:-}" "${R[outpost-full.single.rps]:-}")" ">=" 0.7
    bar "batched readings/s with 100 rules >= 0.9x without (issue 5)" "$(ratio "${R[outpost-rules.batch.readings_s]:-}" "${R[outpost-full.batch.readings_s]:-}")" ">=" 0.9
    bar "batched readings/s, sync=full >= 6x FastAPI" "$(ratio "${R[outpost-full.batch.readings_s]:-}" "${R[fastapi.batch.readings_s]:-}")" ">=" 6
    for m in full normal; do
        s=outpost-$m
        bar "RSS idle, sync=$m <= 4 MB (kB)" "$( [ -n "${R[$s.rss_idle]:-}" ] && echo "${R[$s.rss_idle]}")" "<=" 3906
        bar "RSS peak, sync=$m <= 16 MB (kB)" "$( [ -n "${R[$s.rss_peak]:-}" ] && echo "${R[$s.rss_peak]}")" "<=" 15625
        bar "start-up to ready, sync=$m <= 20 ms (empty data dir)" "${R[$s.start]:-}" "<=" 20
    done
    echo "  (for the RSS idle bar: mhd-suspend, the HTTP library alone with no store, idles at" \
         "$(mib "${R[mhd-suspend.rss_idle]:-}") MiB)"
    echo
    echo "details:"
    for s in $SERVERS; do
        [ -n "${R[$s.fail]:-}" ] && continue
        echo "  $s: processes ${R[$s.procs]:-?}; SIGTERM: ${R[$s.term]:-?}; start-up ms min-max" \
             "${R[$s.start_min]:-?}-${R[$s.start_max]:-?}${R[$s.restart]:+; restart on its ${R[$s.data_kb]:-?} kB of data: ${R[$s.restart]} ms (median)}"
        local w
        for w in single batch lat; do
            [ -z "${R[$s.$w.rps]:-}" ] && continue
            echo "    $w: req/s ${R[$s.$w.rps]} p50 ${R[$s.$w.p50_ms]} ms p99 ${R[$s.$w.p99_ms]} ms;" \
                 "CPU: server ${R[$s.$w.srv_pct]}% wrk ${R[$s.$w.wrk_pct]}% other ${R[$s.$w.other_pct]}% of a core;" \
                 "errors conn/read/write/status/timeout ${R[$s.$w.errdetail]}"
        done
    done
    local busy=0 total=0 w
    for s in $SERVERS; do
        for w in single batch lat; do
            [ -z "${R[$s.$w.other_pct]:-}" ] && continue
            total=$((total + 1)); [ "${R[$s.$w.other_pct]}" -gt "$NOISE_MAX" ] && busy=$((busy + 1))
        done
    done
    if [ "$busy" -gt 0 ]; then
        echo
        echo "WARNING: other processes used more than ${NOISE_MAX}% of a core during $busy of the $total kept runs"
        echo "         (oth% column): those figures understate the servers; rerun on a quiet machine."
    fi
    if [ ${#NOTES[@]} -gt 0 ]; then
        echo
        echo "notes:"
        printf '  - %s\n' "${NOTES[@]}"
    fi
    echo
    echo "raw wrk output and server logs: $RAW"
}

# ---------------------------------------------------------------- main
log "results: $OUT (raw: $RAW); ${DUR}s per run; servers: $SERVERS"
[ "$(df -T "$DATA_ROOT" | awk 'NR == 2 {print $2}')" = tmpfs ] && note "outpost data dir $DATA_ROOT is tmpfs: fsync costs nothing there"
for s in $SERVERS; do
    case $s in outpost-full|outpost-normal|outpost-tls|outpost-rules|fastapi|flask|nginx|mhd-suspend)
                   bench_server "$s" ;;
               *) note "unknown server '$s' skipped" ;; esac
done
report | tee "$OUT"
