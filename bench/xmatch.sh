#!/usr/bin/env bash
# Crossmatch benchmark (issue 6): starflow's XMATCH against scipy's cKDTree (bench/xmatch.py) on
# this machine, whole processes timed (reading the Parquet files included), with peak RSS.
#   1. self-crossmatch within 1" of the seed catalog (bench-data/dp02-seed, 7.7 M rows):
#      each object's nearest other object within 1";
#   2. two catalogs of 10 M and 2 M rows: a generated 10 M-row catalog, and 2 M of its rows
#      moved by ~0.3" (another survey's detections of the same objects): nearest within 1".
#
#   cargo build --release && pip install scipy pyarrow numpy && bash bench/xmatch.sh [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
B=./target/release/starflow
W="${1:-2}"
[ -d bench-data/dp02-seed ] || "$B" gen dp02 --out bench-data/dp02-seed --files 109 --rows 7714406
[ -d bench-data/xm-10m ] || "$B" gen dp02 --out bench-data/xm-10m --files 40 --rows 10000000 --seed 3
if [ ! -d bench-data/xm-2m ]; then
  python3 - <<'PY'
import glob, os
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
files = sorted(glob.glob("bench-data/xm-10m/*.parquet"))
rng = np.random.default_rng(5)
os.makedirs("bench-data/xm-2m", exist_ok=True)
for i, f in enumerate(files):
    t = pq.read_table(f, columns=["objectId", "coord_ra", "coord_dec", "mag_r"])
    keep = rng.random(t.num_rows) < 0.2
    t = t.filter(pa.array(keep))
    dec = t.column("coord_dec").to_numpy()
    jitter = 0.3 / 3600.0
    ra = t.column("coord_ra").to_numpy() + rng.normal(0, jitter, t.num_rows) / np.cos(np.radians(dec))
    dec = dec + rng.normal(0, jitter, t.num_rows)
    t = t.set_column(1, "coord_ra", pa.array(ra % 360.0)).set_column(2, "coord_dec", pa.array(np.clip(dec, -90, 90)))
    pq.write_table(t, f"bench-data/xm-2m/part_{i:03d}.parquet")
PY
fi
run() { /usr/bin/time -f "%e s, peak RSS %M KB" "$@"; }
echo "== self-crossmatch within 1\" of the seed catalog ($(du -sh bench-data/dp02-seed | cut -f1))"
run "$B" query -w "$W" --catalog dp02=bench-data/dp02-seed --format csv "SELECT COUNT(*) AS matched FROM XMATCH(dp02, dp02, 1)"
run python3 bench/xmatch.py --left bench-data/dp02-seed --radius 1 --workers "$W"
echo "== 10 M rows crossmatched to 2 M within 1\""
run "$B" query -w "$W" --catalog big=bench-data/xm-10m --catalog small=bench-data/xm-2m --format csv \
  "SELECT COUNT(*) AS matched FROM XMATCH(big, small, 1)"
run python3 bench/xmatch.py --left bench-data/xm-10m --right bench-data/xm-2m --radius 1 --workers "$W"
