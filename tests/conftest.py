import numpy as np
import pytest
import rasterio
from dualdistill.data import sample_scene, write_geotiff

@pytest.fixture(scope="session")
def scene():
    return sample_scene()

@pytest.fixture()
def granule(tmp_path, scene):
    "A folder of single-band files at 10, 20 and 60 m made from the sample, like a SAFE granule."
    for name, factor in {"B04": 1, "B03": 1, "B11": 2, "B09": 6}.items():
        a = scene.read((0, 0, 360, 360), [name])[0]
        coarse = a.reshape(360 // factor, factor, 360 // factor, factor).mean((1, 3)).round().astype(np.uint16)
        write_geotiff(tmp_path / f"T18SVG_20160112T160000_{name}.tif", coarse, scene.crs, scene.transform @ rasterio.Affine.scale(factor), nodata=0)
    (tmp_path / "MTD_TL.xml").write_text("<metadata/>")
    return tmp_path
