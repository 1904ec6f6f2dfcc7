"Behaviour of the maps module: composites and the band picker, stretch, attention read-out, georeferenced overlays, export."
import io, json, warnings
import ipyleaflet
import ipywidgets as widgets
import matplotlib
import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from pyproj import Transformer
from dualdistill.sensors import BandError, DEO_BANDS, LANDSAT_OLI_TIRS, SENTINEL2_L1C, sensor
from dualdistill.student import Student
from dualdistill.teachers import OpticalTeacher
from dualdistill.views import normalise_chip
from dualdistill.maps import (MapError, MapProduct, BandPicker, COMPOSITES, THREE_BANDS, ONE_BAND, composite, stretch_limits,
                              apply_stretch, attention_map, encoder_maps, pca_scores, similarity_map, cosine_similarity, pixel_at,
                              product_map, save_html, upsample, scalar_map, split_map, plot_map, presets, BrowserLink,
                              SimilarityExplorer)

torch.set_num_threads(1)
WINDOW = (100, 150, 128, 96)  # (row, col, height, width): not square, so rows and columns cannot be swapped silently

def numpy_stretch(band, lo=2, hi=98, gamma=1.0):
    "Independent percentile stretch of one raw band, in float64."
    band = np.asarray(band, np.float64)
    p_lo, p_hi = np.percentile(band.ravel(), [lo, hi])
    return np.clip((band - p_lo) / (p_hi - p_lo), 0, 1) ** (1 / gamma)

@pytest.fixture(scope="module")
def raw(scene):
    return {n: a for n, a in zip(SENTINEL2_L1C.names, scene.read(WINDOW).astype(np.float64))}

def test_stretch_limits_match_numpy_percentiles(raw):
    x = np.stack([raw["B08"], raw["B11"]])
    for lo, hi in [(2, 98), (0, 100), (5.5, 93.25)]:
        expected = [[np.percentile(b.ravel(), lo), np.percentile(b.ravel(), hi)] for b in x]
        assert np.allclose(stretch_limits(x, lo, hi), expected, rtol=0, atol=1e-9)
    valid = np.zeros(x.shape[1:], bool); valid[:40] = True  # only the valid pixels count
    assert np.allclose(stretch_limits(x, 10, 90, valid)[0], np.percentile(x[0, :40].ravel(), [10, 90]))
    shown = apply_stretch(x, stretch_limits(x), gamma=2.2)
    assert shown.shape == (128, 96, 2) and np.allclose(shown[..., 1], numpy_stretch(raw["B11"], gamma=2.2), atol=1e-6)

@pytest.mark.parametrize("bad", [(98, 2), (-1, 50), (50, 101), (5, 5)])
def test_bad_stretch_raises(raw, bad):
    with pytest.raises(MapError, match="0 <= low < high <= 100"): stretch_limits(np.stack([raw["B08"]]), *bad)

def test_bad_gamma_and_unknown_bands(scene):
    with pytest.raises(MapError, match="positive gamma"): composite(scene, "true colour", gamma=0, window=WINDOW)
    with pytest.raises(BandError, match="presets are"): composite(scene, "ndvi", window=WINDOW)
    with pytest.raises(BandError, match="preset"): composite(scene, ["B08", "B04"], window=WINDOW)
    with pytest.raises(BandError, match="source_bands"): composite(np.zeros((3, 4, 4)), "true colour")
    with pytest.raises(BandError, match="3 channels"): composite(np.zeros((2, 4, 4)), "B04", source_bands=["B04", "B03", "B02"])

@pytest.mark.parametrize("name", list(COMPOSITES))
def test_every_preset_renders_its_bands(scene, raw, name):
    c = COMPOSITES[name]
    p = composite(scene, name, window=WINDOW)
    assert p.rgb.shape == (128, 96, 3) and p.rgb.min() >= 0 and p.rgb.max() <= 1
    if c.kind == "rgb":
        for channel, band in enumerate(c.bands): assert np.allclose(p.rgb[..., channel], numpy_stretch(raw[band]), atol=1e-6)
    else:
        a, b = (raw[n] for n in c.bands)
        assert np.allclose(p.values[0], (a - b) / (a + b), atol=1e-6) and p.colormap == c.colormap

def test_picker_dropdowns_change_the_rendered_channels_exactly(scene, raw):
    picker = BandPicker(scene, window=WINDOW, show_map=False)
    assert picker.preset.value == "true colour"
    for channel, band in enumerate(("B04", "B03", "B02")): assert np.allclose(picker.product.rgb[..., channel], numpy_stretch(raw[band]), atol=1e-6)
    picker.red.value = "B08"  # NIR into the red channel; green and blue stay
    assert picker.preset.value == THREE_BANDS
    for channel, band in enumerate(("B08", "B03", "B02")): assert np.allclose(picker.product.rgb[..., channel], numpy_stretch(raw[band]), atol=1e-6)
    picker.green.value, picker.blue.value = "B04", "B03"
    assert picker.preset.value == "colour infrared" and picker.product.channel_names == ("B08", "B04", "B03")
    for channel, band in enumerate(("B08", "B04", "B03")): assert np.allclose(picker.product.rgb[..., channel], numpy_stretch(raw[band]), atol=1e-6)
    picker.stretch.value, picker.gamma.value = (5, 95), 1.8
    assert np.allclose(picker.product.rgb[..., 0], numpy_stretch(raw["B08"], 5, 95, 1.8), atol=1e-6)
    before = picker.preview.value
    picker.preset.value = "SWIR"  # a preset sets the three menus
    assert (picker.red.value, picker.green.value, picker.blue.value) == ("B12", "B8A", "B04") and picker.preview.value != before
    picker.band.value = "B11"  # one band through a colormap
    assert picker.preset.value == ONE_BAND and picker.product.channel_names == ("B11",)
    picker.colormap.value = "viridis"
    assert np.allclose(picker.product.rgb, matplotlib.colormaps["viridis"](numpy_stretch(raw["B11"], 5, 95, 1.8))[..., :3], atol=1e-6)
    assert Image.open(io.BytesIO(picker.preview.value)).size == (96, 128)  # the preview shrinks large windows only

def test_picker_on_an_array_with_a_map(raw):
    bands = SENTINEL2_L1C.select(["B02", "B03", "B04", "B08"])
    x = np.stack([raw[n] for n in bands.names])
    transform = rasterio.Affine(10, 0, 500000, 0, -10, 4200000)
    picker = BandPicker(x, source_bands=bands, crs="EPSG:32618", transform=transform, basemap=None)
    assert [v for _, v in picker.red.options] == list(bands.names) and picker.red.options[3][0] == "B08 (nir, 832.8 nm, 10 m)"
    assert "NDVI" in picker.preset.options and "SWIR" not in picker.preset.options  # presets whose bands the array has
    picker.preset.value = "NDVI"
    assert np.allclose(picker.product.values[0], (raw["B08"] - raw["B04"]) / (raw["B08"] + raw["B04"]), atol=1e-6)
    assert picker.overlay.url == picker.product.data_url(512) and picker.overlay.name == "NDVI (B08, B04)"

def test_student_attention_sums_to_one_and_leaves_out_register_tokens(scene):
    torch.manual_seed(0)
    student = Student(DEO_BANDS, size="tiny", reg_tokens=4, teacher_dim=32, head_hidden=32).eval()
    chip = scene.read((200, 300, 64, 80), DEO_BANDS.names)
    maps = encoder_maps(chip, DEO_BANDS, student)
    # independent read-out: timm's own attention matrix of the last block, [class, 4 registers, 4 x 5 patches]
    attn = student.body.blocks[-1].attn
    captured = []
    hook = attn.attn_drop.register_forward_hook(lambda m, i, o: captured.append(o))
    attn.fused_attn = False
    try:
        with torch.no_grad():
            x = normalise_chip(chip, DEO_BANDS)[None]
            student(x); student(x[:, :3])
    finally: hook.remove(); attn.fused_attn = True
    for name, full in zip(("student MS", "student RGB"), captured):
        assert full.shape == (1, 3, 1 + 4 + 20, 1 + 4 + 20)
        row = full[0, :, 0, 5:].double()
        expected = (row / row.sum(-1, keepdim=True)).reshape(3, 4, 5).numpy()
        a = maps[name].attention
        assert a.shape == (3, 4, 5) and np.allclose(a.sum((1, 2)), 1, atol=1e-6) and np.allclose(a, expected, atol=1e-6)
        assert maps[name].features.shape == (192, 4, 5)
        assert not np.allclose(row.sum(-1).numpy(), 1)  # the class token does attend to itself and the registers

def test_teacher_attention_sums_to_one_over_the_patch_grid(scene):
    teacher = OpticalTeacher("vit_small_patch16_dinov3", weights="random")  # 4 register tokens
    maps = encoder_maps(scene.read((0, 0, 64, 96), DEO_BANDS.names), DEO_BANDS, teachers={"teacher": teacher})
    a = maps["teacher"].attention
    assert teacher.model.num_prefix_tokens == 5 and a.shape == (6, 4, 6) and np.allclose(a.sum((1, 2)), 1, atol=1e-6) and (a >= 0).all()
    with pytest.raises(BandError, match=r"\(C, H, W\)"): encoder_maps(np.zeros((10, 8)), DEO_BANDS, teachers={"teacher": teacher})
    with pytest.raises(MapError, match="student or at least one teacher"): encoder_maps(np.zeros((10, 8, 8)), DEO_BANDS)

def test_attention_map_upsampling_and_heads():
    a = np.random.default_rng(0).random((4, 3, 5)); a /= a.sum((1, 2), keepdims=True)
    up = upsample(a, (48, 80))
    assert up.shape == (4, 48, 80) and np.allclose(up[:, ::16, ::16], a) and (np.ptp(up.reshape(4, 3, 16, 5, 16), axis=(2, 4)) == 0).all()
    mean = attention_map(a, size=(48, 80))
    assert np.allclose(mean.values[0, ::16, ::16], a.mean(0), atol=1e-7) and mean.limits.tolist() == [[0, pytest.approx(a.mean(0).max())]]
    assert np.allclose(attention_map(torch.from_numpy(a), head=2).values[0], a[2], atol=1e-7)
    with pytest.raises(MapError, match="0..3"): attention_map(a, head=4)
    with pytest.raises(MapError, match=r"\(heads, h, w\)"): attention_map(a[0])

def test_pca_recovers_known_components_and_similarity_is_cosine():
    rng = np.random.default_rng(1)
    directions = np.linalg.qr(rng.normal(size=(12, 3)))[0]
    centred = rng.normal(size=(30, 3)); centred -= centred.mean(0)
    scores = np.linalg.qr(centred)[0] * [30.0, 10.0, 3.0]  # uncorrelated, zero-mean, variances far apart
    f = (scores @ directions.T).T.reshape(12, 5, 6) + 1.5
    got = pca_scores(f)
    for c in range(3): assert abs(np.corrcoef(got[c].ravel(), scores[:, c])[0, 1]) > 1 - 1e-9
    flat = f.reshape(12, -1)
    expected = flat.T @ flat[:, 7] / (np.linalg.norm(flat, axis=0) * np.linalg.norm(flat[:, 7]))
    assert np.allclose(cosine_similarity(f, (1, 1)).ravel(), expected)
    sim = similarity_map(f, (20, 37), size=(50, 60))  # pixel (20, 37) of 50 x 60 lies in patch (2, 3) of 5 x 6
    assert sim.tags["QUERY_PATCH"] == "2,3" and np.isclose(sim.values[0, 20, 37], 1) and sim.limits.tolist() == [[-1, 1]]
    with pytest.raises(MapError, match="inside"): similarity_map(f, (50, 0), size=(50, 60))

def test_overlay_bounds_are_the_scene_bounds_in_wgs84(scene):
    p = composite(scene, "true colour")
    expected = Transformer.from_crs(scene.crs.to_wkt(), "EPSG:4326", always_xy=True).transform_bounds(*scene.bounds, densify_pts=21)
    assert np.allclose(p.bounds_wgs84, expected, rtol=0, atol=1e-6)
    ov = p.overlay(max_size=64)
    (south, west), (north, east) = ov.bounds
    assert np.allclose([west, south, east, north], expected, rtol=0, atol=1e-6)
    # every corner of the scene lies inside, and the envelope is tight: each side touches the footprint
    to_lonlat = Transformer.from_crs(scene.crs.to_wkt(), "EPSG:4326", always_xy=True)
    left, bottom, right, top = scene.bounds
    lon, lat = to_lonlat.transform([left, right, right, left], [top, top, bottom, bottom])
    assert west <= min(lon) and max(lon) <= east and south <= min(lat) and max(lat) <= north
    assert min(abs(west - min(lon)), abs(east - max(lon))) < 1e-9 and min(abs(south - min(lat)), abs(north - max(lat))) < 1e-9

def test_warped_overlay_puts_pixels_where_they_are(scene):
    "Blocks of distinct colours land, after reprojection to Web Mercator, at their true location."
    H, W, block = 120, 160, 20
    code = np.arange((H // block) * (W // block)).reshape(H // block, W // block)
    values = np.kron(code, np.ones((block, block)))[None].astype(np.float32)
    colours = np.stack([(values[0] * 37) % 251, (values[0] * 91) % 241, (values[0] * 13) % 239], -1) / 255
    transform = scene.window_transform((0, 0, H, W))
    p = MapProduct("blocks", values, colours, np.ones((H, W), bool), [[0, code.max()]], ("code",), scene.crs, transform)
    rgba, (left, bottom, right, top) = p._warped_rgba("EPSG:3857")
    to_merc = Transformer.from_crs(scene.crs.to_wkt(), "EPSG:3857", always_xy=True)
    h, w = rgba.shape[:2]
    for i in range(H // block):
        for j in range(W // block):
            x, y = transform @ ((j + 0.5) * block, (i + 0.5) * block)  # the centre of block (i, j)
            mx, my = to_merc.transform(x, y)
            r, c = int((top - my) / (top - bottom) * h), int((mx - left) / (right - left) * w)
            assert rgba[r, c, 3] == 255 and np.array_equal(rgba[r, c, :3], np.round(colours[i * block, j * block] * 255).astype(np.uint8))

def test_geotiff_export_round_trips_crs_transform_and_values(scene, tmp_path):
    p = composite(scene, "NDVI", window=WINDOW)
    path = p.to_geotiff(tmp_path / "ndvi.tif")
    with rasterio.open(path) as src:
        assert src.crs == scene.crs and src.transform == scene.window_transform(WINDOW) and src.count == 1
        assert src.descriptions == ("NDVI",) and src.dtypes == ("float32",) and np.isnan(src.nodata)
        assert np.array_equal(src.read(1), p.values[0]) and src.tags()["VIEW"] == "NDVI"
    a = attention_map(np.full((2, 8, 6), 1 / 48), like=p, name="toy")
    with rasterio.open(a.to_geotiff(tmp_path / "attention.tif")) as src:
        assert src.crs == scene.crs and src.transform == scene.window_transform(WINDOW) and src.shape == (128, 96)
    with rasterio.open(p.to_geotiff(tmp_path / "ndvi_rgb.tif", rendered=True)) as src:
        assert src.count == 3 and src.dtypes[0] == "uint8" and src.transform == scene.window_transform(WINDOW)
        assert np.array_equal(src.read().transpose(1, 2, 0), np.round(p.rgb * 255).astype(np.uint8))
    with pytest.raises(MapError, match="georeferenced"): attention_map(np.ones((1, 2, 2))).to_geotiff(tmp_path / "x.tif")

def test_png_export_is_a_valid_png_of_the_right_size(tmp_path):
    x = np.random.default_rng(0).random((3, 30, 50)) + 1
    x[:, 5, 7] = np.nan  # a pixel without data: transparent
    p = composite(x, ["B08", "B04", "B03"], source_bands=["B08", "B04", "B03"])
    path = p.to_png(tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (50, 30) and img.mode == "RGBA"
        a = np.asarray(img)
    assert a[5, 7, 3] == 0 and (np.delete(a[..., 3].ravel(), 5 * 50 + 7) == 255).all()
    assert np.array_equal(a[..., :3][a[..., 3] > 0], np.round(p.rgb * 255).astype(np.uint8)[a[..., 3] > 0])
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind

def test_pixel_at_and_unplaceable_products(scene):
    p = composite(scene, "true colour", window=WINDOW)
    x, y = p.transform @ (10.5, 20.5)  # centre of pixel (row 20, col 10)
    lon, lat = Transformer.from_crs(scene.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(x, y)
    assert pixel_at(p, lon, lat) == (20, 10)
    with pytest.raises(MapError, match="location"): pixel_at(p, 0.0, 0.0)
    bare = scalar_map("bare", np.ones((3, 3)))
    with pytest.raises(MapError, match="georeferenced"): bare.overlay()
    with pytest.raises(MapError, match="opacities"): product_map([p], opacity=[0.5, 0.5], basemap=None)
    with pytest.raises(MapError, match="both a CRS and a transform"): MapProduct("x", np.ones((1, 2, 2)), np.ones((2, 2, 3)), np.ones((2, 2), bool), [[0, 1]], ("x",), crs="EPSG:4326")

def test_standalone_html_names_local_assets(scene, tmp_path):
    p = composite(scene, "true colour", window=WINDOW)
    m = product_map([p, attention_map(np.ones((1, 8, 6)) / 48, like=p)], opacity=[1, 0.5], basemap=None)
    offline = save_html(m, tmp_path / "offline.html", assets_url="http://127.0.0.1:8000/js/").read_text()
    assert '<script src="http://127.0.0.1:8000/js/require.js">' in offline and "cdn" not in offline.split("<script type")[0]
    assert json.dumps({"anywidget": "http://127.0.0.1:8000/js/anywidget/index", "jupyter-leaflet": "http://127.0.0.1:8000/js/jupyter-leaflet/index"}) in offline
    online = save_html(m, tmp_path / "online.html").read_text()
    assert "cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@" in online and "cdnjs.cloudflare.com" in online
    assert offline.count("data:image/png;base64,") == 2

def test_presets_come_from_the_sensor_of_the_bands(raw):
    x = np.stack([raw[n] for n in ("B08", "B04", "B03", "B02")])  # Landsat-like values, named by Landsat's bands
    landsat = composite(x, "colour infrared", source_bands=LANDSAT_OLI_TIRS.select(["B5", "B4", "B3", "B2"]))
    assert landsat.channel_names == ("B5", "B4", "B3") and np.allclose(landsat.rgb[..., 0], numpy_stretch(raw["B08"]), atol=1e-6)
    ndvi = composite(x, "NDVI", source_bands=["B5", "B4", "B3", "B2"])  # plain names: found in the Landsat band table
    assert np.allclose(ndvi.values[0], (raw["B08"] - raw["B04"]) / (raw["B08"] + raw["B04"]), atol=1e-6)
    assert {n: c.bands for n, c in presets(sensor("landsat_oli_tirs")).items() if c.kind == "rgb"} == sensor("landsat_oli_tirs").composites
    picker = BandPicker(x, source_bands=LANDSAT_OLI_TIRS.select(["B5", "B4", "B3", "B2"]), show_map=False)
    assert list(picker.preset.options)[:2] == ["true colour", "colour infrared"] and picker.product.channel_names == ("B4", "B3", "B2")
    picker.preset.value = "colour infrared"
    assert (picker.red.value, picker.green.value, picker.blue.value) == ("B5", "B4", "B3")

def test_map_exports_raise_no_warnings(scene, tmp_path):
    import leafmap  # noqa: F401  (its import warns about its own dependencies; the maps must not)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rasterio's `*` on an Affine raised PendingDeprecationWarning on every export
        p = composite(scene, "colour infrared", window=WINDOW)
        att = attention_map(np.random.default_rng(0).random((2, 8, 6)), like=p, name="toy")
        p.to_geotiff(tmp_path / "v.tif"); p.to_geotiff(tmp_path / "r.tif", rendered=True); att.to_png(tmp_path / "a.png")
        m = product_map([p, att], opacity=[1.0, 0.5], basemap=None)
        save_html(m, tmp_path / "m.html"); split_map(p, att, basemap=None)
        plot_map([p, att], split=True)
        lon, lat = SimilarityExplorer({"toy": np.random.default_rng(1).random((4, 8, 6))}, p, at=(30, 40), basemap=None)._location()[::-1]
        assert pixel_at(p, lon, lat) == (30, 40)
    with rasterio.open(tmp_path / "v.tif") as src: assert src.transform == scene.window_transform(WINDOW) and p.bounds == src.bounds

def test_opacity_slider_is_linked_in_the_browser_and_saves_without_jslink(scene, tmp_path):
    p = composite(scene, "true colour", window=WINDOW)
    m = product_map([p, attention_map(np.ones((1, 8, 6)) / 48, like=p)], opacity=[1, 0.5], basemap=None)
    control = next(c.widget for c in m.controls if isinstance(c, ipyleaflet.WidgetControl))
    slider, link = control.children
    assert slider is m.opacity_slider and slider.value == 0.5 and isinstance(link, BrowserLink)
    assert (link.from_widget, link.from_attr, link.to_widget, link.to_attr) == (slider, "value", m.overlays[1], "opacity")
    assert link.layout.display == "none"
    page = save_html(m, tmp_path / "m.html").read_text()
    state = json.loads(page.split('widget-state+json">\n', 1)[1].split("\n</script>", 1)[0])["state"]
    links = [v for v in state.values() if v["model_name"] == "AnyModel"]
    assert len(links) == 1 and links[0]["state"]["from_widget"] == f"IPY_MODEL_{slider.model_id}" and "export default" in links[0]["state"]["_esm"]
    assert not [v for v in state.values() if v["model_name"] in ("LinkModel", "DirectionalLinkModel")]
    assert '"source"' not in json.dumps(state)  # what execnb (nbdev's docs processing) cannot write
    assert product_map([p], basemap=None, opacity_slider=False).opacity_slider is None
    with pytest.raises(MapError, match="synced attribute"): BrowserLink((slider, "nope"), (m.overlays[1], "opacity"))
    with pytest.raises(MapError, match="synced attribute"): BrowserLink((slider, "value"), (object(), "opacity"))
