"""Window-read benchmark: chips per second from the bundled sample (one tiled GeoTIFF) and, when given, from a folder
of band files on 10/20/60 m grids (resampled on the fly). usage: python scripts/bench_chips.py [granule_folder]"""
import sys, time
import numpy as np
from dualdistill.data import ChipDataset, Scene, sample_scene

def bench(open_scene, size, n=300, cold=20):
    "Chips per second over the first `cold` chips of a freshly opened scene (GDAL block cache empty), and over all `n`."
    ds = ChipDataset(open_scene(), size, length=n, seed=size, max_nodata=1.0)
    t0 = time.perf_counter()
    for i in range(n):
        ds[i]
        if i == cold - 1: t1 = time.perf_counter()
    return cold / (t1 - t0), n / (time.perf_counter() - t0)

if __name__ == "__main__":
    scenes = {"sample GeoTIFF (13 bands, one file)": sample_scene}
    if len(sys.argv) > 1: scenes["band folder (13 files, 10/20/60 m, bilinear)"] = lambda: Scene.open(sys.argv[1])
    for name, open_scene in scenes.items():
        for size in (96, 224):
            cold, overall = bench(open_scene, size)
            print(f"{name:46s} {size:4d} px: first 20 chips {cold:6.1f} chips/s, 300 chips {overall:6.1f} chips/s")
