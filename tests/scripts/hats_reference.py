"""Reference for tests/e2e/hats.rs: what hats-import and LSDB make of the same catalog.

    python hats_reference.py SOURCE_DIR THEIRS_DIR OURS_DIR HIGHEST_ORDER THRESHOLD REGIONS_JSON

Imports SOURCE_DIR (Parquet, columns id/ra/dec) with hats-import into THEIRS_DIR/sky, then
prints one JSON object: hats-import's partitions, the ids in each and their `_healpix_29`, and for every region of
REGIONS_JSON the ids LSDB's cone_search / box_search / polygon_search finds, on hats-import's
catalog and on starflow's (OURS_DIR, a collection written by `starflow hats import`).
"""

import glob
import json
import sys

import lsdb
import pyarrow.parquet as pq
from dask.distributed import Client
from hats_import.catalog.arguments import ImportArguments
from hats_import.pipeline import pipeline_with_client


def search(catalog, region):
    kind = region["kind"]
    if kind == "cone":
        found = catalog.cone_search(region["ra"], region["dec"], region["radius_arcsec"])
    elif kind == "box":
        found = catalog.box_search(ra=tuple(region["ra"]), dec=tuple(region["dec"]))
    else:
        found = catalog.polygon_search([tuple(v) for v in region["vertices"]])
    return sorted(int(i) for i in found.compute()["id"])


def main():
    source, theirs, ours, highest, threshold, regions = sys.argv[1:7]
    regions = json.loads(regions)
    args = ImportArguments(
        output_artifact_name="sky",
        input_file_list=sorted(glob.glob(source + "/*.parquet")),
        file_reader="parquet",
        ra_column="ra",
        dec_column="dec",
        output_path=theirs,
        highest_healpix_order=int(highest),
        pixel_threshold=int(threshold),
        progress_bar=False,
    )
    with Client(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as client:
        pipeline_with_client(args, client)
    root = theirs + "/sky"
    partitions, healpix = {}, {}
    for path in glob.glob(root + "/dataset/Norder=*/Dir=*/Npix=*.parquet"):
        order = int(path.split("Norder=")[1].split("/")[0])
        pixel = int(path.split("Npix=")[1].split(".")[0])
        table = pq.read_table(path, columns=["id", "_healpix_29"])
        partitions[f"{order}/{pixel}"] = sorted(int(i) for i in table["id"])
        for i, h in zip(table["id"].to_pylist(), table["_healpix_29"].to_pylist()):
            healpix[str(i)] = h
    theirs_catalog = lsdb.open_catalog(root)
    ours_catalog = lsdb.open_catalog(ours)
    out = {
        "partitions": partitions,
        "healpix_29": healpix,
        "ours_margin": ours_catalog.margin is not None,
        "ours_rows": int(len(ours_catalog.compute())),
        "theirs": [search(theirs_catalog, r) for r in regions],
        "ours": [search(ours_catalog, r) for r in regions],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
