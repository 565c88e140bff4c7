#!/usr/bin/env python3
"""The KD-tree reference for starflow's crossmatch benchmark (issue 6): scipy's cKDTree on unit
vectors, the usual way astronomers crossmatch in Python.

  self-match: for each row of LEFT, its nearest other row within R arcseconds
  two catalogs: for each row of LEFT, its nearest row of RIGHT within R arcseconds

Prints the number of matched rows, the wall time of the whole process (reading the Parquet
files included, as for starflow) and peak RSS.

  python3 bench/xmatch.py --left DIR [--right DIR] --radius 1 [--workers 2]
"""
import argparse
import glob
import os
import resource
import time

T0 = time.perf_counter()
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402


def unit_vectors(folder):
    files = sorted(glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True))
    table = pq.read_table(files, columns=["coord_ra", "coord_dec"]) if len(files) > 1 else pq.read_table(files[0], columns=["coord_ra", "coord_dec"])
    ra = np.radians(table.column("coord_ra").to_numpy())
    dec = np.radians(table.column("coord_dec").to_numpy())
    cos_dec = np.cos(dec)
    return np.column_stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--left", required=True)
    p.add_argument("--right")
    p.add_argument("--radius", type=float, default=1.0, help="arcseconds")
    p.add_argument("--workers", type=int, default=2, help="threads for cKDTree.query")
    a = p.parse_args()
    chord = 2 * np.sin(np.radians(a.radius / 3600.0) / 2)
    left = unit_vectors(a.left)
    if a.right is None:
        tree = cKDTree(left)
        dist, _ = tree.query(left, k=2, distance_upper_bound=chord, workers=a.workers)
        matched = int(np.isfinite(dist[:, 1]).sum())
    else:
        tree = cKDTree(unit_vectors(a.right))
        dist, _ = tree.query(left, k=1, distance_upper_bound=chord, workers=a.workers)
        matched = int(np.isfinite(dist).sum())
    seconds = time.perf_counter() - T0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ckdtree matched={matched} seconds={seconds:.2f} peak_rss_mib={peak_mib:.0f}")


if __name__ == "__main__":
    main()
