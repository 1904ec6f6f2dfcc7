"""The band registry against published band tables, band-set lookups, reflectance and statistics."""
import numpy as np
import pytest
from dualdistill.sensors import (BAND_SETS, DEO_BANDS, DEO_STATS, EUROSAT_MS, LANDSAT_OLI_TIRS, RGB, SENTINEL2_L1C, SENTINEL2_L2A,
                                 BandError, BandStats, DualDistillError, band_set, band_stats, landsat_c2_scaled, sentinel2_reflectance)

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
