"""Scenes, windows, GeoTIFF round trips, chip datasets and every bad input of the data layer."""
import os, warnings
import numpy as np
import pytest
import rasterio
import torch
from dualdistill.data import ChipDataset, FolderDataset, RasterError, Scene, collate_chips, sample_scene, write_geotiff, SAMPLE_PATH
from dualdistill.sensors import DEO_BANDS, EUROSAT_MS, SENTINEL2_L1C, BandError, DualDistillError, sensor

def test_sample_scene_is_real_and_documented(scene):
    assert scene.shape == (13, 1000, 1000) and scene.crs.to_epsg() == 32618 and scene.res == (10.0, 10.0)
    assert scene.nodata == 0 and scene.bands.names == SENTINEL2_L1C.names
    assert "Contains modified Copernicus Sentinel data 2016" in scene.tags["CREDIT"] and "MIT" in scene.tags["LICENSE"]
    with rasterio.open(SAMPLE_PATH) as ds:
        assert ds.profile["compress"] == "deflate" and ds.profile["tiled"] and ds.descriptions == SENTINEL2_L1C.names
    assert SAMPLE_PATH.stat().st_size <= 15e6
    assert scene.bounds.left == pytest.approx(440230.0) and scene.bounds.top == pytest.approx(4176460.0)

def test_window_read_equals_full_read(scene):
    full = scene.read()
    assert full.dtype == np.float32 and full.shape == (13, 1000, 1000)
    for r, c, h, w in [(0, 0, 96, 96), (517, 803, 224, 197), (904, 776, 96, 224)]:
        assert np.array_equal(scene.read((r, c, h, w)), full[:, r:r + h, c:c + w])
    assert np.array_equal(scene.read((5, 6, 7, 8), ["B12", "B02"]), full[[12, 1], 5:12, 6:14])

def test_chip_read_is_lazy(scene, monkeypatch):
    seen = []
    orig = Scene._reader
    class Spy:
        def __init__(self, ds): self.ds = ds
        def read(self, *a, window=None, **k):
            seen.append((int(window.height), int(window.width)))
            return self.ds.read(*a, window=window, **k)
    monkeypatch.setattr(Scene, "_reader", lambda self, p: Spy(orig(self, p)))
    scene.read((10, 20, 96, 96))
    assert seen == [(96, 96)] * 13

def test_folder_resampled_onto_finest_grid(granule, scene):
    s = Scene.open(granule, resampling="nearest")
    assert s.bands.names == ("B03", "B04", "B09", "B11") and s.shape == (4, 360, 360) and s.transform == scene.transform
    with rasterio.open(granule / "T18SVG_20160112T160000_B11.tif") as ds: coarse = ds.read(1)
    assert np.array_equal(s.read(bands=["B11"])[0], np.repeat(np.repeat(coarse, 2, 0), 2, 1))
    assert np.array_equal(s.read(bands=["B04"])[0], scene.read((0, 0, 360, 360), ["B04"])[0])
    bil = Scene.open(granule, bands=["B09", "B04"])
    assert bil.bands.names == ("B09", "B04") and np.array_equal(bil.read((40, 50, 96, 96)), bil.read()[:, 40:136, 50:146])

def test_write_then_read_keeps_georeference(tmp_path, scene):
    x = scene.read((100, 200, 64, 80), ["B08", "B04"])
    p = scene.write(tmp_path / "chip.tif", x, window=(100, 200, 64, 80), band_names=["B08", "B04"], nodata=0)
    with rasterio.open(p) as ds:
        assert ds.crs == scene.crs and ds.nodata == 0 and ds.descriptions == ("B08", "B04")
        assert ds.transform == rasterio.Affine(10, 0, scene.transform.c + 200 * 10, 0, -10, scene.transform.f - 100 * 10)
        assert np.array_equal(ds.read().astype(np.float32), x)
    back = Scene.open(p)
    assert back.bands.names == ("B08", "B04") and back.nodata == 0 and np.array_equal(back.read(), x)
    assert os.listdir(tmp_path) == ["chip.tif"]
    umask = os.umask(0); os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual permissions, not the temp file's owner-only ones

def test_chip_dataset_random_and_grid(scene):
    ds = ChipDataset(scene, 96, length=50, seed=3)
    assert [ds.window(i) for i in range(5)] == [ChipDataset(scene, 96, length=50, seed=3).window(i) for i in range(5)]
    ds.set_epoch(1)
    assert ds.window(0) != ChipDataset(scene, 96, length=50, seed=3).window(0)
    item = ds[7]
    k, (r, c, h, w) = ds.window(7)
    assert item["image"].dtype == torch.float32 and item["bands"] is scene.bands
    assert np.array_equal(item["image"].numpy(), scene.read((r, c, h, w)))
    assert item["transform"] == scene.window_transform((r, c, h, w))
    grid = ChipDataset(scene, 224, stride=200)
    assert len(grid) == 16 and grid.window(5) == (0, (200, 200, 224, 224))
    batch = collate_chips([grid[0], grid[1]])
    assert batch["image"].shape == (2, 13, 224, 224) and batch["window"][1] == (0, 200, 224, 224)

def _scene_with_nodata(tmp_path, scene):
    x = scene.read((0, 0, 300, 300)).astype(np.uint16)
    x[:, :, :200] = 0  # left two thirds nodata
    return Scene.open(write_geotiff(tmp_path / "half.tif", x, scene.crs, scene.transform, nodata=0, band_names=scene.bands.names))

def test_nodata_windows_are_rejected(tmp_path, scene):
    s = _scene_with_nodata(tmp_path, scene)
    ds = ChipDataset(s, 64, length=20, max_nodata=0.1)
    for i in range(20):
        img = ds[i]["image"].numpy()
        assert ((img == 0).any(0)).mean() <= 0.1
    grid = ChipDataset(s, 100)
    assert [w for _, w in grid.windows] == [(r, 200, 100, 100) for r in (0, 100, 200)]

def test_all_nodata_scene_raises(tmp_path, scene):
    p = write_geotiff(tmp_path / "empty.tif", np.zeros((13, 128, 128), np.uint16), scene.crs, scene.transform, nodata=0)
    s = Scene.open(p)
    with pytest.raises(RasterError, match="at most 0% nodata, found none in 100 random draws"): ChipDataset(s, 64, length=4)[0]
    with pytest.raises(RasterError, match="at least one grid window with at most 0% nodata"): ChipDataset(s, 64)

def test_folder_dataset_reorders_by_name(tmp_path, scene):
    for cls, (r, c) in {"Forest": (10, 10), "SeaLake": (300, 900)}.items():
        (tmp_path / cls).mkdir()
        for k in range(2):
            w = (r + 40 * k, c, 32, 32)
            write_geotiff(tmp_path / cls / f"{cls}_{k}.tif", scene.read(w, EUROSAT_MS.names).astype(np.uint16), scene.crs, scene.window_transform(w))
    ds = FolderDataset(tmp_path)
    assert ds.classes == ["Forest", "SeaLake"] and len(ds) == 4 and ds.bands.names == DEO_BANDS.names
    item = ds[3]
    assert item["label"] == 1 and torch.equal(item["image"], torch.from_numpy(scene.read((340, 900, 32, 32), DEO_BANDS.names)))
    with pytest.raises(BandError, match="unknown band 'B99'"): FolderDataset(tmp_path, bands=["B04", "B99"])

# ---- every bad input of issue 2, item 6: the package's error, saying what was expected and what was found

def test_not_a_raster(tmp_path):
    (tmp_path / "notes.tif").write_text("not an image")
    with pytest.raises(RasterError, match="expected a raster file.*could not be read"): Scene.open(tmp_path / "notes.tif")
    with pytest.raises(RasterError, match="expected a raster file at .*found nothing"): Scene.open(tmp_path / "missing.tif")

def test_missing_band_file(granule):
    with pytest.raises(RasterError, match=r"expected a file for each of bands \['B08'\].*found files for \['B03', 'B04', 'B09', 'B11'\]"):
        Scene.open(granule, bands=["B04", "B08"])

def test_unknown_band_name(scene, granule):
    with pytest.raises(BandError, match="unknown band 'B13'"): scene.read((0, 0, 8, 8), ["B04", "B13"])
    with pytest.raises(BandError, match="unknown band 'red'"): Scene.open(granule, bands=["red"])
    with pytest.raises(BandError, match=r"bands \['B13'\] are not in .*s2_l1c_18SVG_20160112.tif: it has \['B01'"): Scene.open(SAMPLE_PATH, bands=["B04", "B13"])

@pytest.mark.parametrize("window", [(990, 0, 96, 96), (0, -1, 8, 8), (2000, 2000, 4, 4), (0, 0, 0, 5), (1, 2, 3)])
def test_window_outside_scene(scene, window):
    with pytest.raises(RasterError, match="expected a window"): scene.read(window)

def test_non_numeric_dtype(tmp_path, scene):
    p = tmp_path / "complex.tif"
    with rasterio.open(p, "w", driver="GTiff", width=8, height=8, count=1, dtype="complex64", crs=scene.crs, transform=scene.transform) as ds:
        ds.write(np.ones((1, 8, 8), np.complex64))
    with pytest.raises(RasterError, match="expected real numeric pixels.*found dtype complex64"): Scene.open(p, file_bands=["B04"])
    with pytest.raises(RasterError, match="expected a real numeric array, found dtype <U1"):
        write_geotiff(tmp_path / "s.tif", np.array([[["a"]]]), scene.crs, scene.transform)
    assert sorted(os.listdir(tmp_path)) == ["complex.tif"]

def test_band_files_with_different_crs(granule):
    with rasterio.open(granule / "T18SVG_20160112T160000_B03.tif") as ds: a, t = ds.read(), ds.transform
    (granule / "T18SVG_20160112T160000_B03.tif").unlink()
    write_geotiff(granule / "T18SVG_20160112T160000_B03.tif", a, "EPSG:32617", t)
    with pytest.raises(RasterError, match="expected all band files to share one CRS.*EPSG:32617"): Scene.open(granule)

def test_output_folder_missing_writes_nothing(tmp_path, scene):
    with pytest.raises(RasterError, match="expected an existing folder.*found no folder"):
        write_geotiff(tmp_path / "nope" / "x.tif", np.zeros((1, 4, 4)), scene.crs, scene.transform)
    assert not (tmp_path / "nope").exists()

def test_writing_onto_a_folder_is_the_packages_error(tmp_path, scene):
    (tmp_path / "out.tif").mkdir()
    for write in (lambda: write_geotiff(tmp_path / "out.tif", np.zeros((1, 4, 4)), scene.crs, scene.transform),
                  lambda: scene.write(tmp_path / "out.tif", np.zeros((4, 4)), window=(0, 0, 4, 4))):
        with pytest.raises(RasterError, match=r"expected a file path to write, found a folder at .*out\.tif"): write()
    assert os.listdir(tmp_path / "out.tif") == [] and os.listdir(tmp_path) == ["out.tif"]  # nothing written, no temporary left
    (tmp_path / "file").write_text("")
    with pytest.raises(RasterError, match="expected an existing folder.*found a file at"):
        write_geotiff(tmp_path / "file" / "x.tif", np.zeros((1, 4, 4)), scene.crs, scene.transform)

def test_window_transforms_and_bounds_match_rasterio_without_deprecation_warnings(tmp_path, scene):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio's own helpers multiply Affines with `*`: the independent reference here
        expected = [rasterio.windows.transform(rasterio.windows.Window(c, r, w, h), scene.transform)
                    for r, c, h, w in [(0, 0, 5, 5), (100, 250, 64, 32), (999, 999, 1, 1)]]
        expected_bounds = rasterio.windows.bounds(rasterio.windows.Window(0, 0, 1000, 1000), scene.transform)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = [scene.window_transform(w) for w in [(0, 0, 5, 5), (100, 250, 64, 32), (999, 999, 1, 1)]]
        assert tuple(scene.bounds) == pytest.approx(expected_bounds)
        p = scene.write(tmp_path / "w.tif", np.ones((64, 32), np.float32), window=(100, 250, 64, 32), band_names=["one"])
    assert got == expected
    with rasterio.open(p) as ds: assert ds.transform == expected[1] and ds.crs == scene.crs

def test_scene_opens_with_a_sensor(granule):
    a = Scene.open(granule, sensor=sensor("sentinel2_l1c"))
    b = Scene.open(granule)
    assert a.bands == b.bands and np.array_equal(a.read((0, 0, 8, 8)), b.read((0, 0, 8, 8)))
    with pytest.raises(BandError, match="unknown band 'B04' for band set 'landsat_oli_tirs'"):
        Scene.open(granule, bands=["B04"], sensor=sensor("landsat_oli_tirs"))

def test_failed_write_leaves_nothing_half_written(tmp_path, scene, monkeypatch):
    def boom(*a, **k): raise OSError("disk full")
    monkeypatch.setattr(rasterio.io.DatasetWriter, "write", boom)
    with pytest.raises(OSError, match="disk full"): write_geotiff(tmp_path / "x.tif", np.zeros((1, 4, 4)), scene.crs, scene.transform)
    assert os.listdir(tmp_path) == []

def test_chip_larger_than_scene(scene):
    with pytest.raises(RasterError, match="chip size at most the scene's 1000 x 1000 pixels, found 1024"): ChipDataset(scene, 1024, length=1)

def test_wrong_band_count_in_file(scene, tmp_path):
    p = write_geotiff(tmp_path / "five.tif", np.ones((5, 8, 8), np.uint16), scene.crs, scene.transform)
    with pytest.raises(BandError, match="has 5 bands without band names; expected 13"): Scene.open(p)
    with pytest.raises(BandError, match="expected 4 bands.*found 5"): Scene.open(p, file_bands=["B04", "B03", "B02", "B08"])
    assert issubclass(RasterError, DualDistillError)

def test_workers_and_pickling_give_the_same_items(scene):
    import pickle
    from dualdistill.views import MultiCropViews, ViewConfig
    ds = ChipDataset(sample_scene(bands=DEO_BANDS.names), 64, length=8, seed=5, transform=MultiCropViews(config=ViewConfig(global_size=32, local_size=16, n_local=2)))
    main = [ds[i]["image"] for i in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(main[0], ds[0]["image"]))  # the transform is seeded per item
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_chips)
    first = next(iter(loader))["image"]
    assert len(first) == 4 and torch.equal(first[0][1], main[1][0]) and torch.equal(first[3][0], main[0][3])
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[2]["image"][1], main[2][1])
