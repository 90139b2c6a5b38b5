#!/usr/bin/env bash
# Load benchmark for caddy-llm-affinity, on loopback only.
#
#   bash bench/run.sh
#
# Builds the gateway (./cmd/caddy), the load generator and a fake upstream,
# generates ~1 KB / ~32 KB / ~256 KB agent request bodies, and for each body
# size x concurrency (1, 64) measures, interleaved round by round:
#   0 upstream direct, 1 Caddy plain reverse_proxy, 2 Caddy + llm_affinity with
#   pinned sessions, 3 Caddy + llm_affinity with a local `when` rule (no header),
#   4 Portkey's open-source gateway (npm @portkey-ai/gateway), if it installs.
# Writes bench/RESULTS.md. Tunables (env): DUR (4s), WARMUP (1s), ROUNDS (2),
# CONCS ("1 64"), SIZES ("1024 32768 262144"), PORTKEY (1; 0 skips it).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DUR=${DUR:-4s}
WARMUP=${WARMUP:-1s}
ROUNDS=${ROUNDS:-2}
CONCS=${CONCS:-"1 64"}
SIZES=${SIZES:-"1024 32768 262144"}
PORTKEY=${PORTKEY:-1}
CMDLINE="bash bench/run.sh"
for v in DUR WARMUP ROUNDS CONCS SIZES PORTKEY BASE_PORT; do
	[ -n "${!v+x}" ] && [ -n "$(printenv "$v")" ] && CMDLINE="$v='$(printenv "$v")' $CMDLINE"
done

for t in go python3 curl; do
	command -v "$t" >/dev/null || { echo "run.sh: $t is required" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/llm-affinity-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# ---- build -----------------------------------------------------------------
log "building binaries into $WORK"
go build -o "$WORK/caddy" ./cmd/caddy
go build -o "$WORK/loadgen" ./bench/loadgen
go build -o "$WORK/upstream" ./bench/upstream
go build -o "$WORK/genbody" ./bench/genbody

for s in $SIZES; do
	"$WORK/genbody" -size "$s" -out "$WORK/body-$s.json"
done

# ---- ports -----------------------------------------------------------------
# Fixed high loopback ports (override with BASE_PORT).
BASE_PORT=${BASE_PORT:-28080}
UP_PORT=$BASE_PORT
PLAIN_PORT=$((BASE_PORT + 1))
PIN_PORT=$((BASE_PORT + 2))
RULE_PORT=$((BASE_PORT + 3))
PK_PORT=$((BASE_PORT + 4))

wait_http() { # url [method]
	local i
	for i in $(seq 1 100); do
		if curl -s -o /dev/null --max-time 1 "$1"; then return 0; fi
		sleep 0.1
	done
	echo "run.sh: $1 did not come up" >&2
	return 1
}

# ---- upstream --------------------------------------------------------------
"$WORK/upstream" -addr "127.0.0.1:$UP_PORT" >"$WORK/upstream.log" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
wait_http "http://127.0.0.1:$UP_PORT/healthz"

# ---- Caddy configs ---------------------------------------------------------
global='{
	admin off
	persist_config off
	auto_https off
	log {
		level ERROR
	}
}'
cat >"$WORK/plain.Caddyfile" <<EOF
$global

http://127.0.0.1:$PLAIN_PORT {
	reverse_proxy 127.0.0.1:$UP_PORT
}
EOF
aff_site() { # port
	cat <<EOF
$global

http://127.0.0.1:$1 {
	llm_affinity {
		default bench-model
		model bench-model {
			to 127.0.0.1:$UP_PORT
		}
		model other-model {
			to 127.0.0.1:$UP_PORT
		}
		route chat {
			when last_role user
			models bench-model
		}
	}
	reverse_proxy {
		dynamic llm_affinity
	}
}
EOF
}
aff_site "$PIN_PORT" >"$WORK/pinned.Caddyfile"
aff_site "$RULE_PORT" >"$WORK/rules.Caddyfile"
for c in plain pinned rules; do
	"$WORK/caddy" validate --adapter caddyfile --config "$WORK/$c.Caddyfile" >/dev/null 2>&1 ||
		{ "$WORK/caddy" validate --adapter caddyfile --config "$WORK/$c.Caddyfile"; exit 1; }
done

# ---- Portkey ---------------------------------------------------------------
PK_STATUS="not attempted (PORTKEY=0)"
PK_VERSION="n/a"
PK_DIR="$WORK/portkey"
if [ "$PORTKEY" = 1 ]; then
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		PK_STATUS="not run: node/npm not installed"
	else
		mkdir -p "$PK_DIR"
		log "installing @portkey-ai/gateway with npm"
		if (cd "$PK_DIR" && timeout 300 npm install --no-audit --no-fund --loglevel=error \
			@portkey-ai/gateway >"$WORK/npm.log" 2>&1); then
			PK_VERSION=$(node -p "require('$PK_DIR/node_modules/@portkey-ai/gateway/package.json').version")
			PK_STATUS=ok
		else
			PK_STATUS="not run: npm install failed: $(tail -n 3 "$WORK/npm.log" | tr '\n' ' ')"
		fi
	fi
fi

# ---- gateway lifecycle (fresh processes per cell so peak RSS is per cell) ---
declare -A GPID
start_gateways() {
	local c
	for c in plain pinned rules; do
		"$WORK/caddy" run --adapter caddyfile --config "$WORK/$c.Caddyfile" >"$WORK/caddy-$c.log" 2>&1 &
		GPID[$c]=$!
		PIDS+=("${GPID[$c]}")
	done
	wait_http "http://127.0.0.1:$PLAIN_PORT/healthz"
	wait_http "http://127.0.0.1:$PIN_PORT/healthz"
	wait_http "http://127.0.0.1:$RULE_PORT/healthz"
	if [ "$PK_STATUS" = ok ]; then
		NODE_ENV=production node "$PK_DIR/node_modules/@portkey-ai/gateway/build/start-server.js" \
			--port="$PK_PORT" --headless >"$WORK/portkey.log" 2>&1 &
		GPID[portkey]=$!
		PIDS+=("${GPID[portkey]}")
		if ! wait_http "http://127.0.0.1:$PK_PORT/"; then
			PK_STATUS="not run: gateway did not start: $(tail -n 3 "$WORK/portkey.log" | tr '\n' ' ')"
		fi
	fi
}
hwm_mb() { # pid -> peak RSS in MB
	awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "n/a"
}
stop_gateways() {
	local c
	for c in "${!GPID[@]}"; do
		kill "${GPID[$c]}" 2>/dev/null || true
		wait "${GPID[$c]}" 2>/dev/null || true
	done
	GPID=()
}

# ---- targets -----------------------------------------------------------------
CHAT=/v1/chat/completions
TARGETS="direct plain pinned rules"
target_args() { # name conc
	case $1 in
	direct) echo "-url http://127.0.0.1:$UP_PORT$CHAT" ;;
	plain) echo "-url http://127.0.0.1:$PLAIN_PORT$CHAT" ;;
	pinned) echo "-url http://127.0.0.1:$PIN_PORT$CHAT -sessions 64" ;;
	rules) echo "-url http://127.0.0.1:$RULE_PORT$CHAT" ;;
	portkey) echo "-url http://127.0.0.1:$PK_PORT$CHAT -header x-portkey-provider:openai -header x-portkey-custom-host:http://127.0.0.1:$UP_PORT/v1" ;;
	esac
}

# Sanity checks: every target answers 200 and llm_affinity reports the
# expected decision (pinned on the second request of a session, routed by the
# rule without a header).
sanity() {
	local b="$WORK/body-$(echo "$SIZES" | awk '{print $1}').json" h
	start_gateways
	curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @"$b" \
		"http://127.0.0.1:$PLAIN_PORT$CHAT" || { echo "plain reverse_proxy failed" >&2; exit 1; }
	curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -H 'X-Model-Affinity: sanity' \
		--data-binary @"$b" "http://127.0.0.1:$PIN_PORT$CHAT"
	h=$(curl -sf -D - -o /dev/null -X POST -H 'Content-Type: application/json' -H 'X-Model-Affinity: sanity' \
		--data-binary @"$b" "http://127.0.0.1:$PIN_PORT$CHAT" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-model-affinity-status"{print $2}')
	[ "$h" = pinned ] || { echo "expected pinned, got '$h'" >&2; exit 1; }
	h=$(curl -sf -D - -o /dev/null -X POST -H 'Content-Type: application/json' \
		--data-binary @"$b" "http://127.0.0.1:$RULE_PORT$CHAT" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-model-affinity-route"{print $2}')
	[ "$h" = chat ] || { echo "expected route chat from the when rule, got '$h'" >&2; exit 1; }
	if [ "$PK_STATUS" = ok ]; then
		local code
		code=$(curl -s -o "$WORK/pk-sanity.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
			-H 'Authorization: Bearer dummy' -H 'x-portkey-provider: openai' \
			-H "x-portkey-custom-host: http://127.0.0.1:$UP_PORT/v1" \
			--data-binary @"$b" "http://127.0.0.1:$PK_PORT$CHAT" || true)
		if [ "$code" != 200 ]; then
			PK_STATUS="not run: sanity request answered HTTP $code: $(head -c 300 "$WORK/pk-sanity.json")"
		fi
	fi
	stop_gateways
}
sanity
[ "$PK_STATUS" = ok ] && TARGETS="$TARGETS portkey"
log "portkey: $PK_STATUS"

# ---- measure -----------------------------------------------------------------
RAW="$WORK/raw.jsonl"
: >"$RAW"
for s in $SIZES; do
	for c in $CONCS; do
		log "cell body=$s concurrency=$c"
		start_gateways
		for r in $(seq 1 "$ROUNDS"); do
			for t in $TARGETS; do
				# shellcheck disable=SC2046
				out=$("$WORK/loadgen" $(target_args "$t") -body "$WORK/body-$s.json" \
					-header "Authorization:Bearer dummy" \
					-concurrency "$c" -duration "$DUR" -warmup "$WARMUP")
				log "  round $r $t: $out"
				echo "{\"size\":$s,\"conc\":$c,\"round\":$r,\"target\":\"$t\",\"res\":$out}" >>"$RAW"
			done
		done
		for t in plain pinned rules portkey; do
			[ -n "${GPID[$t]:-}" ] || continue
			echo "{\"size\":$s,\"conc\":$c,\"rss\":{\"target\":\"$t\",\"mb\":\"$(hwm_mb "${GPID[$t]}")\"}}" >>"$RAW"
		done
		echo "{\"size\":$s,\"conc\":$c,\"rss\":{\"target\":\"direct\",\"mb\":\"$(hwm_mb "$UP_PID")\"}}" >>"$RAW"
		stop_gateways
	done
done

# ---- report ------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
NODEV=$(command -v node >/dev/null && node --version || echo "not installed")

python3 - "$RAW" "$ROOT/bench/RESULTS.md" <<PY
import json, os, statistics, sys
raw, out = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(raw)]
meta = {
    "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "nproc": "$(nproc)",
    "cpu": """$CPU""",
    "mem": "$MEM",
    "go": "$(go version)",
    "caddy": "$("$WORK/caddy" version | head -n 1)",
    "node": "$NODEV",
    "pkver": "$PK_VERSION",
    "pkstatus": """$PK_STATUS""",
    "cmd": "$CMDLINE",
    "dur": "$DUR", "warmup": "$WARMUP", "rounds": "$ROUNDS",
}
names = {
    "direct": "0 upstream direct",
    "plain": "1 Caddy reverse_proxy (plain)",
    "pinned": "2 Caddy + llm_affinity, pinned (64 sessions)",
    "rules": "3 Caddy + llm_affinity, no header, \`when\` rule",
    "portkey": "4 Portkey gateway %s (node)" % meta["pkver"],
}
order = ["direct", "plain", "pinned", "rules", "portkey"]
cells = {}
rss = {}
for r in rows:
    k = (r["size"], r["conc"])
    if "rss" in r:
        rss[(k, r["rss"]["target"])] = r["rss"]["mb"]
        continue
    cells.setdefault(k, {}).setdefault(r["target"], []).append(r["res"])

def med(lst, f):
    return statistics.median([x[f] for x in lst])

def human(n):
    return "%d KB" % round(n / 1024)

L = []
L.append("# caddy-llm-affinity load benchmark\n")
L.append("Generated by \`%s\` on %s.\n" % (meta["cmd"], meta["date"]))
L.append("## Machine\n")
L.append("| | |\n|---|---|")
for k, v in [("CPUs (nproc)", meta["nproc"]), ("CPU model", meta["cpu"]), ("Memory", meta["mem"]),
             ("Go", meta["go"]), ("Caddy", meta["caddy"]), ("Node", meta["node"]),
             ("Portkey gateway", meta["pkver"] + ("" if meta["pkstatus"] == "ok" else " (" + meta["pkstatus"] + ")"))]:
    L.append("| %s | %s |" % (k, v))
L.append("")
L.append("## Method\n")
L.append("""- Everything runs on this one machine over loopback (127.0.0.1): the load generator
  (\`bench/loadgen\`, Go, closed loop, keep-alive), the gateways, and a fake
  OpenAI-compatible upstream (\`bench/upstream\`, Go net/http, drains the body and
  answers a fixed ~330-byte chat.completion). Load generator, gateway and upstream
  share the same %s CPUs, so absolute numbers are lower than on separate machines;
  compare rows within a table.
- Bodies (\`bench/genbody\`, deterministic): an agent turn with a system prompt, tool
  definitions and a growing history of assistant tool calls and tool results, ending
  with a user message.
- Per body size x concurrency, the targets are measured interleaved: %s rounds, each
  round runs every target once for %s after a %s warm-up; each figure is the median
  over rounds (with 2 rounds: the mean of the two).
- Gateways are started fresh for each body size x concurrency cell; peak RSS is the
  process's VmHWM at the end of that cell. Targets 2 and 3 are two Caddy processes
  with the same config (on different ports) so each has its own RSS. The upstream
  runs for the whole benchmark, so its RSS (row 0) is its peak up to that cell.
- Caddy: \`admin off\`, \`persist_config off\`, \`auto_https off\`, \`log { level ERROR }\`,
  no access log. Target 2 sends \`X-Model-Affinity\` from a pool of 64 ids (one per
  worker; after each id's first request every request is a pin hit). Target 3 sends no
  header; a route with \`when last_role user\` decides in-process (no routing model).
- Portkey: \`node build/start-server.js --port=N --headless\` with NODE_ENV=production,
  requests with \`x-portkey-provider: openai\`, \`x-portkey-custom-host:
  http://127.0.0.1:UP/v1\`, \`Authorization: Bearer dummy\`.
- "added p50" is the target's p50 minus the direct upstream's p50 in the same cell.
""" % (meta["nproc"], meta["rounds"], meta["dur"], meta["warmup"]))
if meta["pkstatus"] != "ok":
    L.append("**Portkey:** %s\n" % meta["pkstatus"])

ratios = []
L.append("## Results\n")
for (size, conc) in sorted(cells):
    c = cells[(size, conc)]
    actual = os.path.getsize("$WORK/body-%d.json" % size)
    L.append("### body ~%s (%d bytes), concurrency %d\n" % (human(size), actual, conc))
    L.append("| target | requests/s | p50 µs | p99 µs | added p50 µs | errors | peak RSS MB |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    base = med(c["direct"], "p50_us") if "direct" in c else None
    for t in order:
        if t not in c:
            continue
        rps, p50, p99 = med(c[t], "rps"), med(c[t], "p50_us"), med(c[t], "p99_us")
        errs = sum(x["errors"] for x in c[t])
        reqs = sum(x["requests"] for x in c[t])
        add = "—" if t == "direct" else "%+.0f" % (p50 - base)
        L.append("| %s | %.0f | %.0f | %.0f | %s | %d / %d | %s |" % (
            names[t], rps, p50, p99, add, errs, reqs, rss.get(((size, conc), t), "n/a")))
    L.append("")
    r1 = med(c["pinned"], "rps") / med(c["plain"], "rps") if "pinned" in c and "plain" in c else None
    r2 = med(c["portkey"], "rps") / med(c["pinned"], "rps") if "portkey" in c and "pinned" in c else None
    ratios.append((size, conc, r1, r2))
    L.append("- llm_affinity pinned rps / plain reverse_proxy rps: **%s**" % ("%.2f" % r1 if r1 else "n/a"))
    L.append("- Portkey rps / llm_affinity pinned rps: **%s**\n" % ("%.2f" % r2 if r2 else "n/a"))

L.append("## Ratios\n")
L.append("| body | concurrency | pinned / plain reverse_proxy (rps) | Portkey / pinned (rps) |")
L.append("|---|---:|---:|---:|")
for size, conc, r1, r2 in ratios:
    L.append("| %s | %d | %s | %s |" % (human(size), conc, "%.2f" % r1 if r1 else "n/a", "%.2f" % r2 if r2 else "n/a"))
L.append("")
open(out, "w").write("\n".join(L))
print("wrote", out)
PY
log "done"
