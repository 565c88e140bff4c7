#!/usr/bin/env python3
"""Side-by-side benchmark: starflow vs DuckDB, Polars and pandas on the same Parquet files.

Every measurement is a fresh process running one query (the page cache is warmed first),
timed from spawn to exit, with the peak RSS of that process (os.wait4). Prints a markdown
table of medians. Usage:

    pip install duckdb polars pandas pyarrow
    cargo build --release
    python3 bench/compare.py --dir bench-data/dp02-seed [--runs 5] [--workers 2]

Generate the catalog first with `starflow gen dp02 --out DIR --files 109 --rows 7714406`
(or let `starflow bench` do it).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

RA0, DEC0, R = 62.5, -35.0, 1.0
HAVERSINE = (
    f"2*asin(sqrt(pow(sin(radians(coord_dec - ({DEC0}))/2), 2) + "
    f"cos(radians({DEC0}))*cos(radians(coord_dec))*pow(sin(radians(coord_ra - ({RA0}))/2), 2)))"
)

STARFLOW = {
    "head": "SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 5",
    "count": "SELECT COUNT(*) FROM dp02 WHERE mag_i < 26",
    "groupby": "SELECT tract, COUNT(*) AS n, AVG(mag_i) AS mean_i, STDDEV(mag_i) AS std_i, "
               "MIN(mag_i) AS min_i, MAX(mag_i) AS max_i FROM dp02 GROUP BY tract",
    "cone": "SELECT objectId, coord_ra, coord_dec, mag_i FROM dp02 WHERE "
            f"CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', {RA0}, {DEC0}, {R})) = 1",
}

DUCKDB = {
    "head": "SELECT * FROM read_parquet('{g}') WHERE mag_i < 26 LIMIT 5",
    "count": "SELECT COUNT(*) FROM read_parquet('{g}') WHERE mag_i < 26",
    "groupby": "SELECT tract, COUNT(*), AVG(mag_i), STDDEV(mag_i), MIN(mag_i), MAX(mag_i) "
               "FROM read_parquet('{g}') GROUP BY tract",
    "cone": "SELECT objectId, coord_ra, coord_dec, mag_i FROM read_parquet('{g}') WHERE "
            + HAVERSINE + f" <= radians({R})",
}

POLARS = {
    "head": "pl.scan_parquet(g).filter(pl.col('mag_i') < 26).head(5).collect()",
    "count": "pl.scan_parquet(g).filter(pl.col('mag_i') < 26).select(pl.len()).collect()",
    "groupby": "pl.scan_parquet(g).group_by('tract').agg(pl.len(), pl.col('mag_i').mean().alias('a'), "
               "pl.col('mag_i').std().alias('s'), pl.col('mag_i').min().alias('lo'), "
               "pl.col('mag_i').max().alias('hi')).collect()",
    "cone": (
        "dec = pl.col('coord_dec').radians(); ra = pl.col('coord_ra').radians(); "
        f"a = ((dec - math.radians({DEC0})) / 2).sin() ** 2; "
        f"b = math.cos(math.radians({DEC0})) * dec.cos() * (((ra - math.radians({RA0})) / 2).sin() ** 2); "
        "pl.scan_parquet(g).filter(2 * (a + b).sqrt().arcsin() <= "
        f"math.radians({R})).select('objectId', 'coord_ra', 'coord_dec', 'mag_i').collect()"
    ),
}

PANDAS = {
    "count": "df = pd.read_parquet(d, columns=['mag_i']); r = int((df['mag_i'] < 26).sum())",
    "groupby": "df = pd.read_parquet(d, columns=['tract', 'mag_i']); "
               "r = df.groupby('tract')['mag_i'].agg(['count', 'mean', 'std', 'min', 'max'])",
}


BASELINE = {
    "duckdb": "import duckdb",
    "polars": "import math, polars as pl",
    "pandas": "import pandas as pd",
}


def measure(argv):
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[:3]} failed: {err}")
    return elapsed, usage.ru_maxrss / 1024.0


def commands(engine, query, args):
    d = os.path.abspath(args.dir)
    g = os.path.join(d, "*.parquet")
    py = sys.executable
    if engine == "starflow":
        return [args.starflow, "query", "--catalog", f"dp02={d}", "--workers", str(args.workers),
                "--format", "csv", STARFLOW[query]]
    if engine == "duckdb":
        sql = DUCKDB[query].format(g=g)
        return [py, "-c", f"import duckdb; duckdb.sql({sql!r}).fetchall()"]
    if engine == "polars":
        return [py, "-c", f"import math, polars as pl; g = {g!r}; {POLARS[query]}"]
    if engine == "pandas" and query in PANDAS:
        return [py, "-c", f"import pandas as pd; d = {d!r}; {PANDAS[query]}"]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="bench-data/dp02-seed")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--starflow", default="target/release/starflow")
    ap.add_argument("--engines", default="starflow,duckdb,polars,pandas")
    args = ap.parse_args()
    engines = args.engines.split(",")
    # Warm the page cache.
    for name in os.listdir(args.dir):
        with open(os.path.join(args.dir, name), "rb") as f:
            while f.read(1 << 22):
                pass
    print("| query | " + " | ".join(f"{e} s (RSS MiB)" for e in engines) + " |")
    print("|---|" + "---|" * len(engines))
    # What each Python engine pays before any query: interpreter start and import.
    cells = []
    for engine in engines:
        if engine in BASELINE:
            argv = [sys.executable, "-c", BASELINE[engine]]
            measure(argv)
            runs = [measure(argv) for _ in range(args.runs)]
            cells.append(f"{statistics.median(r[0] for r in runs):.3f} ({max(r[1] for r in runs):.0f})")
        else:
            cells.append("-")
    print("| (start + import only) | " + " | ".join(cells) + " |", flush=True)
    for query in STARFLOW:
        cells = []
        for engine in engines:
            argv = commands(engine, query, args)
            if argv is None:
                cells.append("n/a")
                continue
            measure(argv)  # one untimed run (imports, page cache)
            runs = [measure(argv) for _ in range(args.runs)]
            t = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            cells.append(f"{t:.3f} ({rss:.0f})")
        print(f"| {query} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
