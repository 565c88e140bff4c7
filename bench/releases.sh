#!/usr/bin/env bash
# Incremental maintenance benchmark (issue 5): on the seed-sized catalog (109 files, 7.7 M rows)
# a release that reprocesses ~2 % of the files; ingest-and-update of a group-by view over tract
# against the same query recomputed from scratch on the server, and the server's memory.
#
#   cargo build --release && bash bench/releases.sh [CATALOG_DIR] [WORKERS]
#
# Default catalog: bench-data/dp02-seed (made by `starflow bench` or generated here).
set -euo pipefail
cd "$(dirname "$0")/.."
B=./target/release/starflow
BASE="${1:-bench-data/dp02-seed}"
WORKERS="${2:-2}"
W="$(mktemp -d /tmp/starflow-bench-releases.XXXXXX)"
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$W"' EXIT
[ -d "$BASE" ] || "$B" gen dp02 --out "$BASE" --files 109 --rows 7714406
"$B" gen dp02-release --base "$BASE" --out "$W/r2" --seed 7 --replace-frac 0.02 --add-frac 0 --remove-frac 0
# BREAKDOWN=1: the server logs each ingest's phases (at info level, which costs the ingest a little).
LOG=()
[ -n "${BREAKDOWN:-}" ] && LOG=(--log-level info)
"$B" "${LOG[@]}" serve --catalog "dp02=$BASE" -w "$WORKERS" --state-dir "$W/state" --connection-file "$W/c.json" \
  > "$W/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 600); do [ -e "$W/c.json" ] && break; sleep 0.1; done
C="$W/c.json"
Q="SELECT tract, COUNT(*) AS n, AVG(mag_i) AS mean_i, STDDEV(mag_i) AS sd_i, MIN(mag_i) AS lo, MAX(mag_i) AS hi FROM dp02 GROUP BY tract"
"$B" repl --connect "$C" -c "CREATE MATERIALIZED VIEW per_tract AS $Q"
memory() { "$B" repl --connect "$C" --format csv -c "SHOW WORKERS" | awk -F, 'NR > 1 { s += $5 } END { print s }'; }
echo "server RSS with the view: $(memory) MiB"

# 15 rounds, each of the view's query from scratch on the server and then one ingest-and-
# update, so that both sides are measured under the same conditions (this machine's speed
# drifts by tens of percent over a minute). Ingests alternate the 2 % release and the base
# (each is a real delta), each from its own `starflow ingest` as releases come. Both times
# are the server's for the whole statement (an ingest's: waiting for the store, validation,
# views, manifest).
: > "$W/scratch.out"
for r in $(seq 2 16); do
  (echo '\timing on'; echo "$Q;") | "$B" repl --connect "$C" --format csv 2>&1 >/dev/null \
    | sed -n 's/^Time: .*on the server: \([0-9.]*\) s)/\1/p' >> "$W/scratch.out"
  if [ $((r % 2)) = 0 ]; then dir="$W/r2"; else dir="$BASE"; fi
  "$B" ingest --connect "$C" --catalog dp02 --release "r$r" "$dir"
done | tee "$W/ingest.out"
scratch=$(sort -n "$W/scratch.out" | sed -n 8p)
ingest=$(sed -n 's/.*(\([0-9.]*\) s)$/\1/p' "$W/ingest.out" | sort -n | sed -n 8p)
echo "server RSS after 15 releases: $(memory) MiB"
[ -z "${BREAKDOWN:-}" ] || grep -a "release ingested" "$W/serve.log" | sed 's/\x1b\[[0-9;]*m//g' | sed 's/.*release ingested //' | tail -3
echo "median from scratch (query on the server):  ${scratch} s"
echo "median ingest-and-update (server side):     ${ingest} s"
awk -v a="$ingest" -v b="$scratch" 'BEGIN { printf "ratio: %.1f %%\n", 100 * a / b }'
