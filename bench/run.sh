#!/usr/bin/env bash
# `make bench`: benchmarks against a real server (2 worker processes) on PostgreSQL.
#
# Creates a fresh database, migrates it, loads the demo shop, issues an API token,
# starts `saumaton serve --workers 2`, then runs:
# 0b. the same requests served (1 worker) and in process: the   bench/served.py
#      product page, the checkout form, whole checkouts; only
#      with BENCH_ONLY=served (not part of `make bench`)
#   0. the floor of the stack: a minimal FastAPI app under the   bench/floor.py
#      same uvicorn settings, one keep-alive client (empty
#      response, Jinja page, asyncpg/SQLAlchemy Core/ORM
#      queries, a write transaction): server and PostgreSQL CPU
#      per request; runs first, before any server starts
#   1. POS sale throughput/latency (wrk, 16 connections)        bench/pos_sale.py
#   2. flash sale: 1000 web buyers for 100 units online          bench/flash_sale.py
#      followed by `saumaton check` (ledger == levels)
#   3. live-update latency: POS sale commit -> SSE subscriber     bench/live_updates.py
#  5a. web checkout, ONE shopper, before the main server starts   bench/web_checkout.py
#      (so that no other server's jobs take its work): a           (part one)
#      `saumaton serve --workers 1` of its own whose database
#      connections go through a round-trip counting proxy
#      (bench/pg_proxy.py): server CPU, PostgreSQL CPU and round
#      trips per request type and per checkout
#   5. web checkout as browsers do it (cart -> Paytrail simulator  bench/web_checkout.py
#      -> paid order): 16 shoppers against the main server
#      (checkouts/s, whole-flow p99), product page latency (p95),
#      300 buyers for 100 units; then
#      `saumaton check`. Runs while the server is up, so before 4.
#      The simulator runs as its own process
#      (`saumaton paytrail-simulator`; it keeps payments in memory).
#   6. till sales as the till sends them (JSON, staff session)   bench/pos_till.py
#      at 16 tills: paced (1 sale/s each) and saturated; runs
#      while the server is up, so before 4
#   7. returns at 16 tills (API, cash refunds): paced and      bench/returns_till.py
#      saturated; before 4
#   4. the raw-SQL ceiling: pgbench with the same statements      bench/pgbench_run.py
#      (those the app runs now, and those it ran before the hot-path work)
#   8. CSV import: 10,000 products × 5 variants into a fresh     bench/import_products.py
#      database of its own (dry run, import, re-import), time
#      and peak RSS; runs after 4 with the server stopped
#   9. reports on the scaled data set (1 M customers, 5 M lines, bench/reports.py
#      returns, points, NPS, funnel): a copy of the template
#      database `scale_base`, upgraded to head, then each report
#      benchmark module that exists; the copy is dropped. The
#      template is kept between runs; when missing it is built
#      first (12-25 min once; BENCH_SCALE_BUILD=0 skips the
#      step instead); it includes the Paytrail settlement of
#      100,000 payments (bench/reconcile.py, a database of its own)
# stops the server (by PID), runs `saumaton check` again, drops the database and
# prints a summary. Results: bench/results/*.json, summary.txt (gitignored).
#
# Settings (environment): BENCH_PG (admin URL, default
# postgresql://postgres@127.0.0.1:5432/postgres), BENCH_DURATION (s, default 20),
# BENCH_WARMUP (s, default 3), BENCH_CLIENTS (default 16), BENCH_BUYERS (1000),
# BENCH_UNITS (100), BENCH_SALES (500), BENCH_SUBSCRIBERS (8), BENCH_WEB_BUYERS (300),
# BENCH_WEB_UNITS (100), BENCH_PAGE_DURATION (s, 10), BENCH_TILLS (16),
# BENCH_TILL_INTERVAL (s, 1), BENCH_IMPORT_PRODUCTS (10000), BENCH_KEEP_DB=1,
# BENCH_SCALE_BUILD (1: build scale_base if missing; 0: skip step 9 without it),
# BENCH_WEB_PRODUCTS (products the 16 shoppers buy, 4), BENCH_WEB_ONE_WARMUP
# (checkouts, 30), BENCH_WEB_ONE_CHECKOUTS (200), BENCH_WEB_PARTS
# (the parts of step 5, default one,checkout,page,oversell), BENCH_FLOOR_REQUESTS
# (requests per measured window of step 0, 2000), BENCH_FLOOR_REPEATS (windows, 3),
# SAUMATON_SRC=/path/to/another/checkout (serve and migrate that tree's `saumaton`
# package instead of this one, e.g. to measure before/after a change; without it this
# tree's package is served, whichever tree the venv was installed from),
# BENCH_SERVED_ARGS (options of bench/served.py for step 0b, e.g. "--windows 9 --tasks"),
# BENCH_ONLY=a comma list of step names (served, floor, pos_sale, flash_sale, live_updates,
# web_checkout, pos_till, returns_till, pgbench, import_products, reports) to run only
# those; the database, demo shop, server and simulator are set up all the same, the
# scale template is neither built nor used unless `reports` is named. E.g. the web
# checkout before and after a change:
#   SAUMATON_SRC=/path/to/old/tree BENCH_ONLY=web_checkout bash bench/run.sh
#   BENCH_ONLY=web_checkout bash bench/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=.venv/bin/python
SAUMATON=.venv/bin/saumaton
PG_ADMIN=${BENCH_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
DURATION=${BENCH_DURATION:-20}
WARMUP=${BENCH_WARMUP:-3}
CLIENTS=${BENCH_CLIENTS:-16}
RESULTS=bench/results
DB_NAME="saumaton_bench_$(date +%Y%m%d%H%M%S)_$$"
DSN="${PG_ADMIN%/*}/${DB_NAME}"
SERVER_PID=""
SIM_PID=""
VAR_DIR=""
STARTED=$(date +%s)
FAILED=()
# The `saumaton` package served (and imported by the CLI) comes from SAUMATON_SRC, else
# from this tree: the venv may be another tree's editable install (a worktree).
export PYTHONPATH="${SAUMATON_SRC:-$PWD}${PYTHONPATH:+:$PYTHONPATH}"
echo "serving saumaton from ${SAUMATON_SRC:-$PWD}"

log() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - STARTED ))"; }
# Whether a step runs: all of them unless BENCH_ONLY names some.
want() { [ -z "${BENCH_ONLY:-}" ] || [[ ",${BENCH_ONLY// /}," == *",$1,"* ]]; }

[ -x "$PY" ] || { echo "no $PY: run 'make install' first" >&2; exit 1; }

# Tools: wrk (load generator) and pgbench (raw-SQL ceiling), from Debian.
need_pkg() {  # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$1" = pgbench ] && ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 && return 0
  echo "installing $2 (for $1)"
  if ! apt-get install -y -q "$2" >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$2" >/dev/null
  fi
}
need_pkg wrk wrk
need_pkg pgbench postgresql-client
need_pkg psql postgresql-client

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

cleanup() {
  local rc=$?
  stop_server
  if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
    kill -TERM "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
  fi
  if [ -z "${BENCH_KEEP_DB:-}" ]; then
    psql "$PG_ADMIN" -q -c "DROP DATABASE IF EXISTS \"${DB_NAME}\" WITH (FORCE)" \
      >/dev/null 2>&1 || true
  else
    echo "kept database $DSN"
  fi
  [ -n "$VAR_DIR" ] && rm -rf "$VAR_DIR"
  exit $rc
}
trap cleanup EXIT INT TERM

mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.json "$RESULTS"/*.txt "$RESULTS"/*.log
VAR_DIR=$(mktemp -d)
export SAUMATON_DATABASE_URL="$DSN" SAUMATON_VAR_DIR="$VAR_DIR"
{
  echo "started: $(date -Is)"
  echo "nproc: $(nproc)"
  echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "database: $DB_NAME"
  echo "saumaton package served: $(cd / && "$OLDPWD/$PY" -c 'import saumaton; print(saumaton.__file__)')"
} > "$RESULTS/run.txt"

log "database $DB_NAME: create, migrate, load the demo shop"
psql "$PG_ADMIN" -q -c "CREATE DATABASE \"${DB_NAME}\"" >/dev/null
"$SAUMATON" db upgrade >/dev/null
"$SAUMATON" demo-data > "$RESULTS/demo-data.log"
TOKEN=$("$SAUMATON" token create omistaja@kaunisiho.fi --name bench | tail -1)

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:${PORT}"
SIM_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "Paytrail simulator on 127.0.0.1:$SIM_PORT"
"$SAUMATON" paytrail-simulator --host 127.0.0.1 --port "$SIM_PORT" > "$RESULTS/simulator.log" 2>&1 &
SIM_PID=$!
# Not fatal: a tree served with SAUMATON_SRC may predate the simulator command; then
# only step 5 fails.
"$SAUMATON" wait-ready --url "http://127.0.0.1:${SIM_PORT}/docs" --timeout 30 \
  || echo "no Paytrail simulator: step 5 will fail" >&2

if want floor; then
  # First, with no server up: the minimal apps' own servers are the only ones running.
  log "0. the floor of the stack: minimal apps under the same uvicorn settings"
  "$PY" -m bench.floor --dsn "$DSN" --requests "${BENCH_FLOOR_REQUESTS:-2000}" \
    --repeats "${BENCH_FLOOR_REPEATS:-3}" || FAILED+=(floor)
fi

if [ -n "${BENCH_ONLY:-}" ] && want served; then
  # Its own server and simulator; before the main server, whose jobs would take its work.
  log "0b. served and in process: the same requests, one client"
  "$PY" -m bench.served --dsn "$DSN" --saumaton "$SAUMATON" ${BENCH_SERVED_ARGS:-} \
    || FAILED+=(served)
fi

WEB_PARTS=${BENCH_WEB_PARTS:-one,checkout,page,oversell}
if want web_checkout && [[ ",$WEB_PARTS," == *",one,"* ]]; then
  # Before the main server starts: no other server's jobs may take this part's work.
  log "5a. web checkout, one shopper: a server of its own (1 worker), round trips counted"
  "$PY" -m bench.web_checkout --dsn "$DSN" --token "$TOKEN" --parts one \
    --sim-url "http://127.0.0.1:${SIM_PORT}" --saumaton "$SAUMATON" \
    --one-warmup "${BENCH_WEB_ONE_WARMUP:-30}" --one-checkouts "${BENCH_WEB_ONE_CHECKOUTS:-200}" \
    || FAILED+=(web_checkout_one)
fi
WEB_PARTS=$(tr ',' '\n' <<< "$WEB_PARTS" | { grep -vx one || true; } | paste -sd, -)

log "server: saumaton serve --workers 2 on $URL"
SAUMATON_PAYTRAIL_URL="http://127.0.0.1:${SIM_PORT}" SAUMATON_PUBLIC_URL="$URL" \
  "$SAUMATON" serve --workers 2 --host 127.0.0.1 --port "$PORT" > "$RESULTS/server.log" 2>&1 &
SERVER_PID=$!
"$SAUMATON" wait-ready --url "$URL/healthz" --timeout 60

if want pos_sale; then
  log "1. POS sale throughput (${CLIENTS} clients, ${WARMUP}s warm-up + ${DURATION}s)"
  "$PY" -m bench.pos_sale --url "$URL" --dsn "$DSN" --token "$TOKEN" --server-pid "$SERVER_PID" \
    --duration "$DURATION" --warmup "$WARMUP" --connections "$CLIENTS" || FAILED+=(pos_sale)
fi

if want flash_sale; then
  log "2. flash sale (${BENCH_BUYERS:-1000} buyers, ${BENCH_UNITS:-100} units online)"
  "$PY" -m bench.flash_sale --url "$URL" --dsn "$DSN" --token "$TOKEN" \
    --server-pid "$SERVER_PID" --buyers "${BENCH_BUYERS:-1000}" --units "${BENCH_UNITS:-100}" \
    || FAILED+=(flash_sale)
  "$SAUMATON" check > "$RESULTS/check_after_flash.txt" 2>&1 || FAILED+=(check_after_flash)
  tail -1 "$RESULTS/check_after_flash.txt"
fi

if want live_updates; then
  log "3. live-update latency (${BENCH_SALES:-500} sales, ${BENCH_SUBSCRIBERS:-8} subscribers)"
  "$PY" -m bench.live_updates --url "$URL" --dsn "$DSN" --token "$TOKEN" \
    --server-pid "$SERVER_PID" --sales "${BENCH_SALES:-500}" \
    --subscribers "${BENCH_SUBSCRIBERS:-8}" || FAILED+=(live_updates)
fi

if want web_checkout && [ -n "$WEB_PARTS" ]; then
  log "5. web checkout (${CLIENTS} shoppers), product page, ${BENCH_WEB_BUYERS:-300} buyers for ${BENCH_WEB_UNITS:-100} units"
  "$PY" -m bench.web_checkout --url "$URL" --dsn "$DSN" --token "$TOKEN" \
    --server-pid "$SERVER_PID" --sim-pid "$SIM_PID" --duration "$DURATION" --warmup "$WARMUP" \
    --shoppers "$CLIENTS" --page-duration "${BENCH_PAGE_DURATION:-10}" \
    --buyers "${BENCH_WEB_BUYERS:-300}" --units "${BENCH_WEB_UNITS:-100}" \
    --products "${BENCH_WEB_PRODUCTS:-4}" --parts "$WEB_PARTS" || FAILED+=(web_checkout)
  "$SAUMATON" check > "$RESULTS/check_after_web.txt" 2>&1 || FAILED+=(check_after_web)
  tail -1 "$RESULTS/check_after_web.txt"
fi

if want pos_till; then
  log "6. till sales (${BENCH_TILLS:-16} tills: paced, one sale per ${BENCH_TILL_INTERVAL:-1}s each; then saturated)"
  "$PY" -m bench.pos_till --url "$URL" --dsn "$DSN" --server-pid "$SERVER_PID" \
    --tills "${BENCH_TILLS:-16}" --duration "$DURATION" --warmup "$WARMUP" \
    --interval "${BENCH_TILL_INTERVAL:-1}" || FAILED+=(pos_till)
  "$SAUMATON" check > "$RESULTS/check_after_till.txt" 2>&1 || FAILED+=(check_after_till)
  tail -1 "$RESULTS/check_after_till.txt"
fi

if want returns_till; then
  log "7. returns (${BENCH_TILLS:-16} tills: paced, one return per ${BENCH_TILL_INTERVAL:-1}s each; then saturated)"
  "$PY" -m bench.returns_till --url "$URL" --dsn "$DSN" --token "$TOKEN" \
    --server-pid "$SERVER_PID" --tills "${BENCH_TILLS:-16}" --duration "$DURATION" \
    --warmup "$WARMUP" --interval "${BENCH_TILL_INTERVAL:-1}" || FAILED+=(returns_till)
  "$SAUMATON" check > "$RESULTS/check_after_returns.txt" 2>&1 || FAILED+=(check_after_returns)
  tail -1 "$RESULTS/check_after_returns.txt"
fi

log "stopping the server (pid $SERVER_PID)"
stop_server

if want pgbench; then
  log "4. pgbench: the same statements as a POS sale, raw SQL (${CLIENTS} clients)"
  for variant in current orig; do
    "$PY" -m bench.pgbench_run --dsn "$DSN" --variant "$variant" --clients "$CLIENTS" \
      --duration "$DURATION" --warmup "$WARMUP" || FAILED+=("pgbench_$variant")
  done
fi

if want import_products; then
  log "8. CSV import: ${BENCH_IMPORT_PRODUCTS:-10000} products × 5 variants (a fresh database)"
  "$PY" -m bench.import_products --admin-dsn "$PG_ADMIN" \
    --products "${BENCH_IMPORT_PRODUCTS:-10000}" --variants 5 || FAILED+=(import_products)
fi

if want reports; then
  log "9. reports on the scaled data set (template scale_base)"
  if [ "${BENCH_SCALE_BUILD:-1}" = 0 ]; then SCALE_BUILD=--no-build; else SCALE_BUILD=--build; fi
  "$PY" -m bench.reports --admin-dsn "$PG_ADMIN" "$SCALE_BUILD" > "$RESULTS/reports.log" 2>&1 \
    || FAILED+=(reports)
  # The table (between its header and the JSON), or the reason the step was skipped.
  sed -n -e '/^module /,/^{/p' -e '/skipped/p' "$RESULTS/reports.log" | sed '/^{/d'
fi

"$SAUMATON" check > "$RESULTS/check_final.txt" 2>&1 || FAILED+=(check_final)

log "summary (also in $RESULTS/summary.txt)"
"$PY" -m bench.summary --dsn "$DSN"
echo "finished: $(date -Is), $(( $(date +%s) - STARTED ))s" >> "$RESULTS/run.txt"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED: ${FAILED[*]}" | tee -a "$RESULTS/run.txt" >&2
  exit 1
fi
