#!/usr/bin/env bash
# End-to-end tests under a real SLURM (start it first with ../shared/slurm/start-local-slurm.sh 3):
# `srun` over three emulated nodes and two tasks on one node, and `sbatch` with a script from
# `starflow slurm script`, must give the same answers as one process; a rank that never
# starts must make the others fail fast with a message naming it. `srun … starflow serve` on two
# nodes answers `starflow repl` clients like one process, and stops on SHUTDOWN and on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="$PWD/target/release/starflow"
WORK="$(mktemp -d /tmp/starflow-slurm.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN" gen dp02 --out "$WORK/dp02" --files 12 --rows 120000 --row-group-rows 4000 --seed 11 2>/dev/null
CAT="dp02=$WORK/dp02"

# name | sort the output before comparing (unordered result) | SQL
QUERIES=(
  "scan|sort|SELECT objectId, coord_ra, mag_i FROM dp02 WHERE mag_i < 22 AND coord_dec > -35"
  "count|keep|SELECT COUNT(*) AS n FROM dp02 WHERE mag_i < 26"
  "groupby|sort|SELECT tract, patch, COUNT(*) AS n, AVG(mag_g - mag_r) AS color, MIN(mag_i) AS lo, MAX(mag_i) AS hi FROM dp02 GROUP BY tract, patch"
  "topk|keep|SELECT objectId, mag_r FROM dp02 ORDER BY mag_r, objectId LIMIT 25"
  "sort|keep|SELECT objectId, coord_dec FROM dp02 WHERE mag_i < 21 ORDER BY coord_dec DESC, objectId"
  "head|keep|SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 7"
  "cone|sort|SELECT objectId FROM dp02 WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.5, -35, 0.5)) = 1"
)

normalise() { if [ "$1" = sort ]; then sort; else cat; fi; }

check() { # label, launcher prefix...
  local label="$1"; shift
  for q in "${QUERIES[@]}"; do
    IFS='|' read -r name order sql <<<"$q"
    "$BIN" query --catalog "$CAT" --workers 2 --format csv "$sql" | normalise "$order" > "$WORK/$name.single"
    "$@" "$BIN" query --catalog "$CAT" --format csv "$sql" | normalise "$order" > "$WORK/$name.multi"
    [ "$(wc -l < "$WORK/$name.single")" -gt 1 ] || fail "$name: empty single-process result"
    cmp -s "$WORK/$name.single" "$WORK/$name.multi" || { diff "$WORK/$name.single" "$WORK/$name.multi" | head >&2; fail "$label $name differs from one process"; }
    echo "ok: $label $name ($(($(wc -l < "$WORK/$name.multi") - 1)) rows)"
  done
}

check "srun -N 3" srun -N 3 --ntasks-per-node=1 --cpus-per-task=2
check "srun -N 1 -n 2" srun -N 1 --ntasks=2 --cpus-per-task=1

# Bytes between processes: a group-by sends kilobytes, not the data.
stats=$(srun -N 3 --ntasks-per-node=1 --cpus-per-task=2 "$BIN" query --catalog "$CAT" --format csv --stats \
  "SELECT tract, COUNT(*), AVG(mag_i) FROM dp02 GROUP BY tract" 2>&1 >/dev/null | grep '^stats:')
echo "$stats"
bytes=$(sed -n 's/.*bytes_sent=\([0-9]*\).*/\1/p' <<<"$stats")
processes=$(sed -n 's/.*processes=\([0-9]*\).*/\1/p' <<<"$stats")
[ "$processes" = 3 ] || fail "expected 3 processes, got $processes"
[ "$bytes" -gt 0 ] && [ "$bytes" -lt 200000 ] || fail "group-by sent $bytes bytes between processes"

# sbatch with a generated script.
"$BIN" slurm script --nodes 3 --cpus-per-node 2 --time 00:05:00 --job-name sf-e2e --output "$WORK/job.log" -- \
  query --catalog "$CAT" --format csv --out "$WORK/groupby.sbatch" \
  "SELECT tract, patch, COUNT(*) AS n, AVG(mag_g - mag_r) AS color, MIN(mag_i) AS lo, MAX(mag_i) AS hi FROM dp02 GROUP BY tract, patch" \
  > "$WORK/job.sh"
grep -q '^#SBATCH --nodes=3' "$WORK/job.sh" || fail "script lacks --nodes"
sbatch --wait "$WORK/job.sh" >/dev/null || { cat "$WORK/job.log" >&2; fail "sbatch job failed"; }
sort "$WORK/groupby.sbatch" | cmp -s - "$WORK/groupby.single" || fail "sbatch group-by differs from one process"
echo "ok: sbatch group-by"

# A HATS import over 3 nodes writes the files one process writes; a cone over it agrees.
"$BIN" hats import --catalog "$CAT" --out "$WORK/hats.single" --highest-order 8 --threshold 3000 --margin-arcsec 30 -w 2 2>/dev/null
srun -N 3 --ntasks-per-node=1 --cpus-per-task=2 "$BIN" hats import --catalog "$CAT" --out "$WORK/hats.multi" \
  --highest-order 8 --threshold 3000 --margin-arcsec 30 2>/dev/null
[ "$(($(wc -l < "$WORK/hats.single/dp02/partition_info.csv") - 1))" -gt 10 ] || fail "hats import made too few partitions"
diff -r "$WORK/hats.single" "$WORK/hats.multi" >&2 || fail "srun -N 3 hats import differs from one process"
cone="SELECT objectId FROM dp02 WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.5, -35, 0.5)) = 1"
srun -N 3 --ntasks-per-node=1 --cpus-per-task=2 "$BIN" query --catalog "dp02=$WORK/hats.multi" --format csv "$cone" | sort \
  | cmp -s - "$WORK/cone.single" || fail "cone over the HATS catalog under srun differs from the Parquet catalog"
echo "ok: srun -N 3 hats import ($(($(wc -l < "$WORK/hats.multi/dp02/partition_info.csv") - 1)) partitions) and a cone over it"

# A rank that never starts: the others fail within seconds, naming it; srun fails.
start=$(date +%s)
if srun -N 3 --ntasks-per-node=1 --cpus-per-task=1 bash -c \
  '[ "$SLURM_PROCID" = 2 ] && exit 0; exec "$0" query --connect-timeout 5 --catalog "$1" "SELECT COUNT(*) FROM dp02"' \
  "$BIN" "$CAT" > "$WORK/lost.out" 2> "$WORK/lost.err"; then
  fail "srun succeeded although rank 2 never started"
fi
elapsed=$(( $(date +%s) - start ))
grep -q "process 2 (node3:[0-9]*)" "$WORK/lost.err" || { cat "$WORK/lost.err" >&2; fail "no message naming the missing rank"; }
[ "$elapsed" -lt 30 ] || fail "took ${elapsed}s to give up on a missing rank"
if grep -q panicked "$WORK/lost.err"; then cat "$WORK/lost.err" >&2; fail "a process panicked"; fi
echo "ok: missing rank reported in ${elapsed}s: $(grep -m1 'process 2' "$WORK/lost.err")"

# A server on two nodes, clients attached from outside the allocation (as from a login node).
export HOME="$WORK/home"  # the connection file goes to ~/.starflow/<job id>.json
start_server() { # log file; runs srun in the background, sets SRUN and CONN
  (srun -N 2 --ntasks-per-node=1 --cpus-per-task=2 "$BIN" serve --catalog "$CAT" > "$1" 2>&1; echo "srun exit $?" >> "$1") &
  SRUN=$!
  CONN=""
  for _ in $(seq 1 600); do
    CONN=$(ls "$HOME"/.starflow/*.json 2>/dev/null | head -1 || true)
    [ -n "$CONN" ] && break
    sleep 0.1
  done
  [ -n "$CONN" ] || { cat "$1" >&2; fail "the server wrote no connection file"; }
  [[ "$(basename "$CONN" .json)" =~ ^[0-9]+$ ]] || fail "connection file $CONN is not named by the job id"
  [ "$(stat -c %a "$CONN")" = 600 ] || fail "connection file mode $(stat -c %a "$CONN")"
}
wait_server() { # log file: srun must end (cleanly) within 30 s and remove the connection file
  for _ in $(seq 1 300); do kill -0 "$SRUN" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$SRUN" 2>/dev/null && fail "the server did not stop"
  wait "$SRUN" || true
  grep -q "srun exit 0" "$1" || { cat "$1" >&2; fail "srun did not exit 0"; }
  grep -q "starflow serve: stopped" "$1" || { cat "$1" >&2; fail "no clean stop"; }
  [ ! -e "$CONN" ] || fail "the connection file was left behind"
}

start_server "$WORK/serve.log"
for q in "${QUERIES[@]}"; do
  IFS='|' read -r name order sql <<<"$q"
  "$BIN" repl --connect "$CONN" --format csv -c "$sql" | normalise "$order" > "$WORK/$name.served"
  cmp -s "$WORK/$name.single" "$WORK/$name.served" || { diff "$WORK/$name.single" "$WORK/$name.served" | head >&2; fail "served $name differs from one process"; }
  echo "ok: srun -N 2 serve + repl $name"
done
workers=$("$BIN" repl --connect "$CONN" --format csv -c "SHOW WORKERS")
echo "$workers"
[ "$(cut -d, -f2 <<<"$workers" | tail -n +2 | tr '\n' ' ')" = "node1 node2 " ] || fail "SHOW WORKERS does not list node1 and node2"
"$BIN" repl --connect "$CONN" -c "SHUTDOWN" | grep -q "shutting down" || fail "SHUTDOWN not acknowledged"
wait_server "$WORK/serve.log"
echo "ok: SHUTDOWN stops every rank"

# The end of the walltime: SLURM sends SIGTERM to every task.
start_server "$WORK/serve2.log"
"$BIN" repl --connect "$CONN" --format csv -c "SELECT COUNT(*) FROM dp02" > /dev/null || fail "second server does not answer"
scancel --signal=TERM "$(basename "$CONN" .json)"
wait_server "$WORK/serve2.log"
echo "ok: SIGTERM stops every rank cleanly"

echo "all SLURM end-to-end checks passed"
