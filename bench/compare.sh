#!/usr/bin/env bash
# Measures natter against the IRC servers people run today, with the same load from
# `natter bench`, and writes docs/performance.md and docs/performance.svg.
#
#   bench/compare.sh                      # every server, every scenario, 3 runs each
#   bench/compare.sh --runs 1 --servers "natter ngircd"
#   bench/compare.sh --quick              # small counts: checks the script in a minute
#   bench/compare.sh --runs 5 --servers "natter ircd-hybrid" --scenarios fanout-paced \
#       --out /tmp/paced.md                 # one row, more runs, kept out of docs/
#
# What it does:
# - installs the reference servers from Debian if missing: inspircd and ircd-hybrid with
#   apt; ngircd conflicts with ircd-hybrid as a package, so its .deb is unpacked into a
#   cache directory and run from there;
# - builds natter (release) unless NATTER_BIN names a binary;
# - for every run starts the server afresh (a fresh data directory for natter, whose
#   persistence stays on) with the configuration in bench/configs/, which lifts flood
#   limits the same way for each, pinned to CPU 0 (taskset), and the generator pinned to
#   CPU 1; every server and generator runs as the unprivileged user `irc`, on
#   127.0.0.1 only;
# - runs each scenario --runs times and takes the median;
# - then bench/report.py writes the table, the machine, the date, the commands and a chart.
#
# Every run is bounded (`--timeout` of natter bench, and `timeout` around it); the
# servers it started are stopped on exit, whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=3
SERVERS="natter ngircd inspircd ircd-hybrid"
QUICK=0
ONLY_SCENARIOS=""
OUT_MD="$ROOT/docs/performance.md"
PORT=16667
RUN_AS=irc
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/natter-bench"

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --servers) SERVERS="$2"; shift 2 ;;
        --scenarios) ONLY_SCENARIOS="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --out) OUT_MD="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
    esac
done

say() { printf '\n== %s\n' "$*" >&2; }

# --- the machine -------------------------------------------------------------------

CORES=$(nproc)
if [ "$CORES" -ge 2 ]; then
    SERVER_CPU=0
    GEN_CPU=1
else
    echo "compare.sh: one core only: server and generator share it, figures are lower" >&2
    SERVER_CPU=0
    GEN_CPU=0
fi
# 10,000 clients and more: both sides need the descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if [ "$(ulimit -n)" -lt 20000 ]; then
    echo "compare.sh: the open-file limit is $(ulimit -n): the idle scenarios may fail; run as root or raise the hard limit" >&2
fi

# --- what is measured --------------------------------------------------------------

if [ "$QUICK" = 1 ]; then
    FANOUT="--members 20 --senders 2 --messages 500"
    DM="--pairs 10 --messages 500"
    PACED="--members 20 --senders 2 --messages 100"
    IDLE="--clients 500"
    CONNECT="--clients 200 --in-flight 50"
    MANY=1000
else
    FANOUT="--members 100 --senders 4 --messages 5000 --size 64"
    DM="--pairs 50 --messages 2000 --size 64"
    PACED="--members 100 --senders 4 --messages 500 --rate 100 --size 64"
    IDLE="--clients 5000"
    CONNECT="--clients 1000 --in-flight 50"
    MANY=10000
fi
SCENARIOS="${ONLY_SCENARIOS:-fanout dm fanout-paced idle connect}"

# --- installing --------------------------------------------------------------------

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

NGIRCD_BIN=$(command -v ngircd || true)
wants() { case " $SERVERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if wants inspircd && ! command -v inspircd >/dev/null; then
    say "installing inspircd"
    apt_install inspircd
fi
if wants ircd-hybrid && ! command -v ircd-hybrid >/dev/null; then
    say "installing ircd-hybrid"
    apt_install ircd-hybrid
fi
if wants ngircd && [ -z "$NGIRCD_BIN" ]; then
    NGIRCD_BIN="$CACHE/ngircd/usr/sbin/ngircd"
    if [ ! -x "$NGIRCD_BIN" ]; then
        say "unpacking ngircd (its package conflicts with ircd-hybrid's)"
        [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }
        mkdir -p "$CACHE/deb"
        (cd "$CACHE/deb" && rm -f ngircd_*.deb && apt-get download ngircd >/dev/null 2>&1)
        dpkg-deb -x "$CACHE"/deb/ngircd_*.deb "$CACHE/ngircd"
    fi
    # Unpacked, it still needs its libraries (libident, ...): their packages do not
    # conflict with anything here, so they are installed as usual.
    missing=""
    for dep in $(dpkg-deb -f "$CACHE"/deb/ngircd_*.deb Depends | tr ',' '\n' | sed 's/[(|].*//; s/ //g'); do
        dpkg -s "$dep" >/dev/null 2>&1 || missing="$missing $dep"
    done
    if [ -n "$missing" ]; then
        say "installing ngircd's libraries:$missing"
        apt_install $missing
    fi
fi
if ! id "$RUN_AS" >/dev/null 2>&1; then
    RUN_AS=nobody
fi

if [ -n "${NATTER_BIN:-}" ]; then
    NATTER="$NATTER_BIN"
else
    say "building natter (release)"
    (cd "$ROOT" && cargo build --release -q -p natter)
    NATTER="$ROOT/target/release/natter"
fi

# --- servers -----------------------------------------------------------------------

WORK=$(mktemp -d /tmp/natter-compare.XXXXXX)
chmod 755 "$WORK"
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
SERVER_PID=""
NODNS_PID=""
if wants ircd-hybrid; then
    echo "nameserver 127.0.0.1" >"$WORK/resolv.conf"
    python3 "$ROOT/bench/nodns.py" --seconds 7200 &
    NODNS_PID=$!
fi

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
cleanup() {
    stop_server
    if [ -n "$NODNS_PID" ]; then
        kill "$NODNS_PID" 2>/dev/null || true
    fi
    if [ -n "${KEEP_WORK:-}" ]; then
        echo "compare.sh: results kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_user() { setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --clear-groups "$@"; }

version_of() {
    case "$1" in
        natter) "$NATTER" --version | head -1 ;;
        ngircd) "$NGIRCD_BIN" --version | head -1 | cut -d- -f1 ;;
        inspircd) dpkg-query -W -f='InspIRCd ${Version}' inspircd 2>/dev/null || echo InspIRCd ;;
        ircd-hybrid) dpkg-query -W -f='ircd-hybrid ${Version}' ircd-hybrid 2>/dev/null || echo ircd-hybrid ;;
    esac
}

# Starts server $1 afresh on $PORT; sets SERVER_PID.
start_server() {
    local name=$1 dir
    dir=$(mktemp -d "$WORK/$name.XXXXXX")
    echo "natter bench reference server" >"$dir/motd.txt"
    local conf="$ROOT/bench/configs/$name.conf"
    if [ -f "$conf" ]; then
        sed -e "s|@PORT@|$PORT|g" -e "s|@DIR@|$dir|g" -e "s|@USER@|$RUN_AS|g" \
            "$conf" >"$dir/$name.conf"
    fi
    chmod -R a+rwX "$dir"
    case "$name" in
        natter)
            # Persistence on (a fresh data directory), flood control and the connection
            # limits lifted by configuration (bench/configs/natter.toml), as for the
            # references.
            taskset -c "$SERVER_CPU" setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --clear-groups \
                "$NATTER" serve --config "$ROOT/bench/configs/natter.toml" \
                --listen "tcp://127.0.0.1:$PORT" --listen "udp://127.0.0.1:$PORT" \
                --data "$dir/data" >"$dir/out.log" 2>&1 &
            ;;
        ngircd)
            taskset -c "$SERVER_CPU" setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --clear-groups \
                "$NGIRCD_BIN" -n -f "$dir/ngircd.conf" >"$dir/out.log" 2>&1 &
            ;;
        inspircd)
            taskset -c "$SERVER_CPU" setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --clear-groups \
                inspircd --nofork --nopid --config="$dir/inspircd.conf" >"$dir/out.log" 2>&1 &
            ;;
        ircd-hybrid)
            # ircd-hybrid looks up every client's host name, with no setting to stop it:
            # in a private mount namespace its resolv.conf names bench/nodns.py on
            # loopback, which refuses at once (natter does no lookups).
            # shellcheck disable=SC2016
            unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$WORK/resolv.conf" \
                taskset -c "$SERVER_CPU" setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --clear-groups \
                ircd-hybrid -foreground -configfile "$dir/ircd-hybrid.conf" \
                -pidfile "$dir/ircd.pid" -logfile "$dir/ircd.log" -klinefile "$dir/kline.db" \
                -dlinefile "$dir/dline.db" -xlinefile "$dir/xline.db" -resvfile "$dir/resv.db" \
                >"$dir/out.log" 2>&1 &
            ;;
        *) echo "compare.sh: unknown server $name" >&2; exit 1 ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 150); do
        if ss -Hltn "sport = :$PORT" | grep -q LISTEN; then
            sleep 0.3
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "compare.sh: $name did not start listening on port $PORT:" >&2
    tail -n 20 "$dir/out.log" >&2 || true
    return 1
}

# Runs one scenario once against a freshly started server; the JSON goes to RESULTS.
bench_once() {
    local name=$1 scenario=$2 run=$3 url=$4 label=$5
    shift 5
    local json="$RESULTS/$label.$scenario.$run.json"
    if ! start_server "$name"; then
        stop_server
        return 0
    fi
    local extra=() kind=$scenario
    case "$scenario" in
        fanout-udp) kind=fanout ;;
        idle-many) kind=idle ;;
    esac
    [ "$kind" = idle ] && extra=(--pid "$SERVER_PID")
    local cmd=("$NATTER" bench "$url" --scenario "$kind" --label "$label"
        --json "$json" --timeout 120 --quiet "$@" "${extra[@]}")
    echo "taskset -c $GEN_CPU ${cmd[*]}" | sed "s|$NATTER|natter|; s|--pid [0-9]*|--pid PID|; s|$RESULTS/||" \
        >>"$WORK/commands.txt"
    printf '%-12s %-14s run %s: ' "$label" "$scenario" "$run" >&2
    if taskset -c "$GEN_CPU" timeout 200 "${cmd[@]}" >"$RESULTS/$label.$scenario.$run.txt" 2>&1; then
        echo "ok" >&2
    else
        echo "incomplete or failed (see below)" >&2
        tail -n 12 "$RESULTS/$label.$scenario.$run.txt" >&2 || true
    fi
    stop_server
}

args_of() {
    case "$1" in
        fanout) echo "$FANOUT" ;;
        dm) echo "$DM" ;;
        fanout-paced) echo "$PACED" ;;
        idle) echo "$IDLE" ;;
        connect) echo "$CONNECT" ;;
    esac
}

: >"$WORK/commands.txt"
: >"$WORK/versions.txt"
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for server in $SERVERS; do
    echo "$server=$(version_of "$server")" >>"$WORK/versions.txt"
done
for run in $(seq "$RUNS"); do
    for scenario in $SCENARIOS; do
        for server in $SERVERS; do
            # shellcheck disable=SC2046
            bench_once "$server" "$scenario" "$run" "tcp://127.0.0.1:$PORT" "$server" $(args_of "$scenario")
            if [ "$server" = natter ] && [ "$scenario" = fanout ]; then
                # natter's reliable UDP, for the UDP/TCP fan-out ratio: right after
                # its TCP fan-out, so that both are measured in the same phase of the
                # machine, not minutes apart.
                # shellcheck disable=SC2086
                bench_once natter fanout-udp "$run" "udp://127.0.0.1:$PORT" natter $FANOUT
            fi
        done
    done
done
if wants natter && [ -z "${ONLY_SCENARIOS:-}" ]; then
    # Many idle clients at once, each still answering PING; spread over source
    # addresses so that no address runs short of ports.
    bench_once natter idle-many 1 "tcp://127.0.0.1:$PORT" natter --clients "$MANY" --source-ips 8 --setup-parallel 128
fi
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$ROOT/bench/report.py" --results "$RESULTS" --commands "$WORK/commands.txt" \
    --versions "$WORK/versions.txt" --runs "$RUNS" --out "$OUT_MD" \
    --server-cpu "$SERVER_CPU" --gen-cpu "$GEN_CPU"
say "wrote $OUT_MD"
