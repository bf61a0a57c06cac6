#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: repeatable to a few
# tenths of a percent from run to run, whatever else the machine is doing (req/s on this
# shared VM drifts by ±10 %). The rig is proxy.sh's (host/examples/proxy_bench.rs, release
# build: the app and the two gateways, one HTTP worker each) run under callgrind, and nginx
# (one process, `proxy_pass` with keep-alive to the same app) run under callgrind too.
#
# For each target, one keep-alive connection (host/benches/keepalive_client.py) sends
# WARMUP requests, callgrind's counters are zeroed, it sends N more, and they are dumped:
# what is counted is the N requests alone, no start-up, no connection set-up. Printed per
# target: instructions (Ir) of the serving thread divided by N (for the gateway, its HTTP
# worker, which also evaluates the per-request policy; for nginx, its one process), the
# whole process's Ir / N (the gateway's includes the app's thread; nginx's does not), and
# the serving thread's top functions by exclusive and by inclusive Ir.
#
# Usage: host/benches/instructions.sh [N] [WARMUP] [TOP]   (defaults 5000, 500, 25)
# BIN=<a proxy_bench binary> skips the build and measures that one.
# Needs valgrind, nginx (apt-get install valgrind nginx-light). Keeps its callgrind files
# in $OUT (default: a temporary directory, printed) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-5000}
WARMUP=${2:-500}
TOP=${3:-25}
OUT=${OUT:-$(mktemp -d /tmp/instructions.XXXXXX)}
mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
APP=$(free_port); PLAIN=$(free_port); POLICY=$(free_port); NGINX=$(free_port)
if [ -n "${BIN:-}" ]; then
  # A rig built before (e.g. a copy kept to compare two versions).
  cp "$BIN" "$OUT/proxy_bench"
else
  # A copy: another build of the shared target directory cannot replace it mid-run.
  host/benches/example_bin.sh proxy_bench "$OUT/proxy_bench"
fi
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# The rig. The pooling allocator's reservations (one per possible memory) are sized down:
# valgrind manages a smaller address space than the kernel, and the bench needs a handful
# of instances, not 256.
GRID_BENCH_MAX_INSTANCES=4 RUST_LOG=warn valgrind --tool=callgrind --separate-threads=yes \
  --callgrind-out-file="$OUT/gateway.out" --log-file="$OUT/gateway.valgrind.log" \
  "$OUT/proxy_bench" "$APP" "$PLAIN" "$POLICY" "$work" &
RIG=$!
pids+=("$RIG")
for _ in $(seq 1200); do [ -s "$work/tokens" ] && break; sleep 0.25; done
[ -s "$work/tokens" ] || { echo "the rig did not start; see $OUT/gateway.valgrind.log" >&2; exit 1; }
TOKEN_PLAIN=$(sed -n 1p "$work/tokens"); TOKEN_POLICY=$(sed -n 2p "$work/tokens")

cat > "$work/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$APP; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
valgrind --tool=callgrind --callgrind-out-file="$OUT/nginx.out" --log-file="$OUT/nginx.valgrind.log" \
  nginx -c "$work/nginx.conf" &
NGX=$!
pids+=("$NGX")
for _ in $(seq 240); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $NGINX))" 2>/dev/null && break; sleep 0.25; done

# measure <name> <valgrind pid> <port> <token> <dump name> <serving-thread pattern>
measure() {

  python3 host/benches/keepalive_client.py "$3" "$4" "$WARMUP" "$N" \
    "callgrind_control -z $2 >/dev/null 2>&1" "callgrind_control --dump=$5 $2 >/dev/null 2>&1"
  # The dump's files: one per thread with --separate-threads, else one.
  python3 - "$1" "$N" "$6" "$OUT" "$5" "$TOP" <<'PY'
import glob, os, re, subprocess, sys
name, n, pattern, out, dump, top = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
files = []
for path in glob.glob(os.path.join(out, "*.out*")):
    with open(path, errors="replace") as f:
        text = f.read()
    if f"desc: Trigger: dump {dump}\n" not in text:
        continue
    total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    files.append((int(total.group(1)) if total else 0, path, re.search(pattern, text) is not None))
if not files:
    sys.exit(f"no callgrind dump named {dump} in {out}")
serving = max((f for f in files if f[2]), default=None)
if serving is None:
    sys.exit(f"no thread of the dump matches {pattern!r}")
everything = sum(f[0] for f in files)
print(f"| {name} | {serving[0] / n:,.0f} | {everything / n:,.0f} | {os.path.basename(serving[1])} |")
with open(os.path.join(out, f"{dump}.top.txt"), "w") as report:
    for inclusive in ("no", "yes"):
        text = subprocess.run(["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=100", serving[1]],
                              capture_output=True, text=True, check=True).stdout
        lines = [l for l in text.splitlines() if re.match(r"^\s*[\d,]+ \(", l) and "PROGRAM TOTALS" not in l]
        report.write(f"## {name}: top {top} by {'inclusive' if inclusive == 'yes' else 'exclusive'} Ir (of {serving[0]:,} for {n} requests)\n")
        if inclusive == "no":
            # The thread's entry frames show its whole count: not anyone's own work.
            lines = [l for l in lines if not re.match(r"^\s*[\d,]+ \((?:100\.0|9\d\.\d+)%\)", l)]
        for line in lines[:top]:
            report.write(line + "\n")
        report.write("\n")
PY
}

echo "N=$N requests after $WARMUP warm-up ones, one keep-alive connection; callgrind files in $OUT"
echo
echo "| target | Ir/request, serving thread | Ir/request, whole process | dump |"
echo "|---|---|---|---|"
# The gateway's HTTP worker is the thread whose dump has the wire path's functions.
measure "gateway, policy off" "$RIG" "$PLAIN" "$TOKEN_PLAIN" plain 'grid_gateway::wire::'
measure "gateway, policy on" "$RIG" "$POLICY" "$TOKEN_POLICY" policy 'grid_gateway::wire::'
measure "nginx proxy_pass keepalive" "$NGX" "$NGINX" - nginx 'ngx_'
# The app alone (its thread in the rig), for reference: what a direct request costs it.
measure "app alone (direct)" "$RIG" "$APP" - direct 'hyper'
echo
cat "$OUT"/plain.top.txt "$OUT"/policy.top.txt "$OUT"/nginx.top.txt
