"""The band registry against published band tables, band-set lookups, reflectance and statistics; sensors as one object."""
import pickle
import numpy as np
import pytest
from dualdistill.sensors import (BAND_SETS, DEO_BANDS, DEO_S2_STATS, DEO_STATS, EUROSAT_MS, LANDSAT_OLI_TIRS, RECIPES, RGB, SENSORS,
                                 SENTINEL2_L1C, SENTINEL2_L2A, BandError, BandStats, DualDistillError, Sensor, band_set, band_stats,
                                 common_band, landsat_c2_scaled, sensor, sensor_for, sentinel2_reflectance)

# ESA, Sentinel-2 spectral response functions (COPE-GSEG-EOPG-TN-15-0007 v3.0), Sentinel-2A: name, centre nm, width nm, GSD m
S2A_TABLE = """B01 442.7 21 60; B02 492.4 66 10; B03 559.8 36 10; B04 664.6 31 10; B05 704.1 15 20; B06 740.5 15 20;
B07 782.8 20 20; B08 832.8 106 10; B8A 864.7 21 20; B09 945.1 20 60; B10 1373.5 31 60; B11 1613.7 91 20; B12 2202.4 175 20"""
# USGS Landsat 8/9 OLI/TIRS band ranges in micrometres, and GSD in metres
LANDSAT_TABLE = """B1 0.43 0.45 30; B2 0.45 0.51 30; B3 0.53 0.59 30; B4 0.64 0.67 30; B5 0.85 0.88 30; B6 1.57 1.65 30;
B7 2.11 2.29 30; B8 0.50 0.68 15; B9 1.36 1.38 30; B10 10.60 11.19 100; B11 11.50 12.51 100"""

def _rows(table): return [r.split() for r in table.replace("\n", " ").split(";")]

def test_sentinel2_matches_esa_table():
    rows = _rows(S2A_TABLE)
    assert SENTINEL2_L1C.names == tuple(r[0] for r in rows)
    for name, centre, width, gsd in rows:
        b = SENTINEL2_L1C[name]
        assert (b.wavelength, b.bandwidth, b.gsd) == (float(centre), float(width), float(gsd))
    assert SENTINEL2_L2A.names == tuple(r[0] for r in rows if r[0] != "B10")
    assert [SENTINEL2_L1C[n].common_name for n in ("B02", "B03", "B04", "B08", "B11", "B12")] == ["blue", "green", "red", "nir", "swir16", "swir22"]

def test_landsat_matches_usgs_ranges():
    for name, lo, hi, gsd in _rows(LANDSAT_TABLE):
        b = LANDSAT_OLI_TIRS[name]
        assert b.wavelength == pytest.approx((float(lo) + float(hi)) / 2 * 1000, abs=6)
        assert b.bandwidth == pytest.approx((float(hi) - float(lo)) * 1000, abs=11)
        assert b.gsd == float(gsd)
    assert len(LANDSAT_OLI_TIRS) == 11 and LANDSAT_OLI_TIRS.rgb == ("B4", "B3", "B2")

def test_deo_band_order_and_rgb():
    assert DEO_BANDS.names == ("B04", "B03", "B02", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
    assert DEO_BANDS.rgb_indices == [0, 1, 2] and SENTINEL2_L1C.rgb_indices == [3, 2, 1]
    assert EUROSAT_MS.names[-1] == "B8A" and len(EUROSAT_MS) == 13
    assert RGB.names == ("R", "G", "B") and RGB["R"].wavelength is None

def test_lookup_subset_reorder():
    sub = SENTINEL2_L1C.select(["B12", "B8A", "B04"])
    assert sub.names == ("B12", "B8A", "B04") and sub.indices(["B04", "B12"]) == [2, 0] and sub.rgb is None
    assert band_set("deo") is DEO_BANDS and set(BAND_SETS) >= {"sentinel2_l1c", "sentinel2_l2a", "deo", "landsat_oli_tirs", "rgb"}

def test_unknown_names_list_valid_ones():
    with pytest.raises(BandError, match=r"unknown band 'B13'.*expected one of \['B04', 'B03'"): DEO_BANDS.select(["B04", "B13"])
    with pytest.raises(BandError, match="unknown band set 'sentinel3'.*deo"): band_set("sentinel3")
    with pytest.raises(BandError, match="expected 10 channels.*found 13"): DEO_BANDS.check(13)
    with pytest.raises(BandError, match="has no RGB bands"): SENTINEL2_L1C.select(["B08"]).rgb_indices
    assert issubclass(BandError, DualDistillError) and issubclass(BandError, ValueError)

def test_sentinel2_reflectance_with_and_without_offset():
    dn = np.array([[0, 1000], [2345, 10000]], np.uint16)
    old = sentinel2_reflectance(dn, baseline="02.01")
    new = sentinel2_reflectance(dn, baseline="N0400")
    assert np.isnan(old[0, 0]) and np.isnan(new[0, 0])
    assert np.allclose(old[[0, 1, 1], [1, 0, 1]], [0.1, 0.2345, 1.0])
    assert np.allclose(new[[0, 1, 1], [1, 0, 1]], [0.0, 0.1345, 0.9])
    assert np.allclose(sentinel2_reflectance(dn, baseline="05.10")[1], new[1])  # later baselines keep the offset
    assert np.allclose(sentinel2_reflectance(dn, offset=-1000)[1], new[1])
    with pytest.raises(DualDistillError, match="exactly one of baseline"): sentinel2_reflectance(dn)
    with pytest.raises(DualDistillError, match="numeric"): sentinel2_reflectance(np.array(["a"]), baseline=4)

def test_landsat_collection2_scaling():
    dn = np.array([0, 7273, 43636], np.uint16)
    sr = landsat_c2_scaled(dn, "L2SR")
    assert np.isnan(sr[0]) and np.allclose(sr[1:], [7273 * 2.75e-5 - 0.2, 43636 * 2.75e-5 - 0.2], atol=1e-6)
    assert np.allclose(landsat_c2_scaled(np.array([44000]), "L2ST"), [44000 * 0.00341802 + 149.0])
    with pytest.raises(DualDistillError, match="unknown Landsat"): landsat_c2_scaled(dn, "L3")

def test_band_stats_by_hand_and_deo_values():
    x = np.array([[[0, 2], [4, 6]], [[1, 1], [1, 3]]], np.float32)  # band A has a nodata 0
    st = band_stats(x, ["B04", "B08"], nodata=0)
    assert st.mean == pytest.approx((4.0, 1.5)) and st.std == pytest.approx((np.sqrt(8 / 3), np.sqrt(0.75)))
    m, s = DEO_STATS.for_bands(["B11", "B03"])
    assert m.tolist() == pytest.approx([1732.16, 0.4215]) and s.tolist() == pytest.approx([1310.37, 0.2754])
    with pytest.raises(BandError, match="no statistics for bands"): DEO_STATS.for_bands(["B01"])
    with pytest.raises(DualDistillError, match="one mean and one std per band"): BandStats(("B04",), (1.0, 2.0), (1.0,))

# Published band combinations: USGS "Landsat 8 band combinations" and Sentinel Hub's Sentinel-2 composites
LANDSAT_COMBOS = {"true colour": ("B4", "B3", "B2"), "colour infrared": ("B5", "B4", "B3"), "SWIR": ("B7", "B5", "B4"),
                  "agriculture": ("B6", "B5", "B2")}
S2_COMBOS = {"true colour": ("B04", "B03", "B02"), "colour infrared": ("B08", "B04", "B03"), "SWIR": ("B12", "B8A", "B04"),
             "agriculture": ("B11", "B08", "B02"), "geology": ("B12", "B11", "B02")}

def test_registry_has_one_sensor_per_band_set():
    assert set(SENSORS) == set(BAND_SETS) == {"sentinel2_l1c", "sentinel2_l2a", "deo", "eurosat_ms", "landsat_oli_tirs", "rgb"}
    for name, s in SENSORS.items(): assert sensor(name) is s and s.bands is band_set(name) and s.name == name
    assert pickle.loads(pickle.dumps(sensor("deo"))) == sensor("deo")  # sensors travel to DataLoader workers
    with pytest.raises(BandError, match="unknown sensor 'modis'.*expected one of"): sensor("modis")
    assert sensor_for(DEO_BANDS.select(["B08", "B11"])) is sensor("deo") and sensor_for(LANDSAT_OLI_TIRS.select(["B5"])) is sensor("landsat_oli_tirs")

def test_sensor_reflectance_follows_its_calibration():
    dn = np.array([1500, 11000], np.uint16)
    for name in ("sentinel2_l1c", "sentinel2_l2a", "deo", "eurosat_ms"):
        assert np.allclose(sensor(name).reflectance(dn, baseline="04.00"), [0.05, 1.0])  # (DN - 1000) / 10000
        assert np.allclose(sensor(name).reflectance(dn, baseline="03.01"), [0.15, 1.1])
    assert np.allclose(sensor("landsat_oli_tirs").reflectance(np.array([7273]), product="L2SR"), [7273 * 2.75e-5 - 0.2], atol=1e-7)
    with pytest.raises(DualDistillError, match="expected a sensor with a DN-to-reflectance calibration, found none for sensor 'rgb'"):
        sensor("rgb").reflectance(dn)

def test_composites_and_indices_by_common_name_match_published_combinations():
    assert {k: sensor("landsat_oli_tirs").composites[k] for k in LANDSAT_COMBOS} == LANDSAT_COMBOS
    assert {k: sensor("sentinel2_l2a").composites[k] for k in S2_COMBOS} == S2_COMBOS
    assert sensor("sentinel2_l1c").indices["NDVI"] == ("B08", "B04") and sensor("landsat_oli_tirs").indices["NDVI"] == ("B5", "B4")
    assert sensor("deo").indices["MNDWI"] == ("B03", "B11") and sensor("landsat_oli_tirs").indices["NBR"] == ("B5", "B7")
    assert list(sensor("rgb").composites) == ["true colour"] and not sensor("rgb").indices
    assert set(sensor("deo").composites) | set(sensor("deo").indices) == set(RECIPES)
    with pytest.raises(BandError, match=r"'rededge' in band set 'sentinel2_l1c', found \['B05', 'B06', 'B07'\]"): common_band(SENTINEL2_L1C, "rededge")

def test_spectral_index_against_the_formula():
    rng = np.random.default_rng(0)
    refl = rng.uniform(0.01, 0.6, size=(10, 4, 5))
    ndvi = sensor("deo").spectral_index(refl, "NDVI")
    nir, red = refl[DEO_BANDS.index("B08")], refl[DEO_BANDS.index("B04")]
    assert np.allclose(ndvi, (nir - red) / (nir + red))
    nbr = sensor("landsat_oli_tirs").spectral_index(refl[[6, 9]], "NBR", bands=["B5", "B7"])
    assert np.allclose(nbr, (refl[6] - refl[9]) / (refl[6] + refl[9]))
    with pytest.raises(BandError, match="expected 10 channels"): sensor("deo").spectral_index(refl[:3], "NDVI")

def test_stats_for_keeps_each_sets_rgb_flag():
    rng = np.random.default_rng(1)
    dn = rng.integers(5000, 20000, size=(4, 16, 16)).astype(np.float32)
    measured = band_stats(dn, ["B4", "B3", "B2", "B5"])
    assert measured.mean[0] == pytest.approx(dn[0].mean()) and measured.std[3] == pytest.approx(dn[3].std())
    landsat = sensor("landsat_oli_tirs").stats_for(["B4", "B3", "B2", "B5"], measured)
    assert landsat == measured and not landsat.rgb_max_scaled  # no reference: raw RGB statistics, not max-scaled
    with pytest.raises(BandError, match="expected statistics for bands"): sensor("rgb").stats_for()
    deo = sensor("deo").stats_for()
    assert deo == DEO_STATS and deo.rgb_max_scaled
    assert not Sensor("deo_s2", DEO_BANDS, sentinel2_reflectance, DEO_S2_STATS).stats_for().rgb_max_scaled
    unit_rgb = BandStats(("R", "G", "B"), (0.4, 0.4, 0.4), (0.2, 0.2, 0.2), rgb_max_scaled=True)
    assert sensor("rgb").stats_for(measured=unit_rgb).rgb_max_scaled  # measured on max-scaled RGB: the flag travels with it
    mixed = sensor("sentinel2_l1c").stats_for(["B04", "B03", "B02", "B09"], BandStats(("B09",), (300.0,), (100.0,)))
    assert mixed.rgb_max_scaled and mixed.mean == (0.4182, 0.4215, 0.3991, 300.0)
