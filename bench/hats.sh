#!/usr/bin/env bash
# HATS benchmark: import a uniform all-sky catalog into ~200,000 partitions (1.2M rows,
# threshold 12) with
# `starflow hats import`, then time opening the catalog (a COUNT(*) from hats_nrows needs no
# partition; EXPLAIN of a cone lists the partitions it keeps) and a cone search.
# Needs the release build and target/hats-venv (tests/scripts/hats-env.sh) for pyarrow.
set -euo pipefail
cd "$(dirname "$0")/.."
S=./target/release/starflow
PY=target/hats-venv/bin/python
ROWS=${ROWS:-1200000}
THRESHOLD=${THRESHOLD:-12}
DATA=bench-data/hats-uniform
if [ ! -d "$DATA/src" ]; then
  mkdir -p "$DATA/src"
  "$PY" - "$DATA/src" "$ROWS" <<'PY'
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
out, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
for k in range(4):
    m = n // 4
    ra = rng.uniform(0, 360, m)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, m)))
    ids = np.arange(k * m, (k + 1) * m, dtype=np.int64)
    pq.write_table(pa.table({"id": ids, "ra": ra, "dec": dec, "mag": rng.uniform(15, 25, m).astype(np.float32)}), f"{out}/part{k}.parquet")
PY
fi
if [ ! -d "$DATA/hats" ]; then
  /usr/bin/time -f "import: %e s, peak RSS %M KB" $S hats import --catalog sky="$DATA/src" --out "$DATA/hats" \
    --highest-order 10 --threshold "$THRESHOLD"
fi
echo "partitions: $(($(wc -l < "$DATA/hats/sky/partition_info.csv") - 1))"
for i in 1 2 3; do
  /usr/bin/time -f "open + plan a cone (EXPLAIN): %e s, peak RSS %M KB" $S query --catalog sky="$DATA/hats" \
    "EXPLAIN SELECT COUNT(*) FROM sky WHERE CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 0.5)) = 1" | grep "HEALPix partitions"
done
for i in 1 2 3; do
  /usr/bin/time -f "cone search 0.5 deg: %e s, peak RSS %M KB" $S query --catalog sky="$DATA/hats" --format csv \
    "SELECT COUNT(*) AS n FROM sky WHERE CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 0.5)) = 1" | tail -1
done
# The same with LSDB (hats-import's reader), for comparison.
/usr/bin/time -f "LSDB process (imports, open, cone): %e s, peak RSS %M KB" "$PY" bench/hats_lsdb.py "$DATA/hats" 2>&1 \
  | grep -a "open_catalog\|cone_search\|LSDB process"
