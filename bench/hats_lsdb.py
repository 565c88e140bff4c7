"""LSDB on the catalog of bench/hats.sh: open_catalog and a 0.5 degree cone search, timed."""
import time, lsdb, sys
t=time.time(); c=lsdb.open_catalog(sys.argv[1]); t1=time.time()
print(f"lsdb open_catalog: {t1-t:.2f} s, {len(c.get_healpix_pixels())} partitions")
t=time.time(); r=c.cone_search(10, 20, 1800).compute(); t2=time.time()
print(f"lsdb cone_search 0.5 deg + compute: {t2-t:.2f} s, {len(r)} rows")
