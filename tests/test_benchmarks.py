"""Benchmark readers on fixtures written here in each published layout (independently of the package's `fake_*` writers),
the torchgeo adapter with torchgeo's own classes, GEO-Bench's pickles, and `dualdistill evaluate --dataset` for every name."""
import argparse, dataclasses, json, pickle, sys, types
from pathlib import Path
import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from dualdistill.sensors import DEO_BANDS, EUROSAT_MS, SENTINEL2_L1C, BandError
from dualdistill.evaluate import IGNORE, SPLITS, EvaluationError, split_samples, kfold_samples
from dualdistill.benchmarks import (BEN_19, BEN_BANDS, EUROSAT_CLASSES, LCZ_CLASSES, OSCD, BigEarthNet, EuroSAT, GeoBench, Sen1Floods11, So2Sat,
                                    add_evaluate_parser, benchmark_samples, fake_benchmark, safe_unpickle, torchgeo_samples)

S2 = SENTINEL2_L1C.names  # B01 .. B08, B8A, B09 .. B12
DEO = list(DEO_BANDS.names)
L1C_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")  # Sen1Floods11 and OSCD
GSD = {b: SENTINEL2_L1C[b].gsd for b in S2}


def tif(path, array, descriptions=None, dtype=None, nodata=None):
    "A GeoTIFF of `(C, H, W)` or `(H, W)`, written with rasterio alone."
    a = np.asarray(array)
    a = a[None] if a.ndim == 2 else a
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=a.shape[2], height=a.shape[1], count=a.shape[0], dtype=dtype or a.dtype,
                       crs="EPSG:32632", transform=from_origin(500000, 5000000, 10, 10), nodata=nodata) as ds:
        ds.write(a.astype(dtype or a.dtype))
        for i, d in enumerate(descriptions or []): ds.set_band_description(i + 1, d)
    return path


def band_value(band, base=0):
    "The constant digital number the fixtures give `band`: 1000 + 50 x its place in Sentinel-2 order, plus `base`."
    return 1000 + 50 * S2.index(band) + base


# --- EuroSAT-MS ---

def eurosat_layout(root, per_class=5, classes=("Forest", "River", "SeaLake"), lists=True, descriptions=None):
    "`EuroSAT_MS/<Class>/<Class>_<n>.tif`, 13 bands in EuroSAT's order (B8A last), values naming band and class; split lists."
    order = list(EUROSAT_MS.names) if descriptions is None else descriptions
    for k, c in enumerate(classes):
        for n in range(per_class):
            a = np.stack([np.full((8, 8), band_value(b, 10 * k + n)) for b in order]).astype(np.uint16)
            tif(root / "EuroSAT_MS" / c / f"{c}_{n + 1}.tif", a, descriptions=None if descriptions is None else [d.replace("B0", "B") for d in descriptions])
    if lists:
        names = {s: [] for s in SPLITS}
        for c in classes:
            for n in range(per_class): names[SPLITS[(0, 0, 0, 1, 2)[n % 5]]].append(f"{c}_{n + 1}.jpg")
        for s in SPLITS: (root / f"eurosat-{s}.txt").write_text("\n".join(names[s]) + "\n")
    return root


def test_eurosat_bands_by_name_and_official_splits(tmp_path):
    reader = EuroSAT(eurosat_layout(tmp_path))
    s = reader.samples()
    assert s.images.shape == (15, 10, 8, 8) and s.bands.names == DEO_BANDS.names and s.classes == EUROSAT_CLASSES
    # B8A is the 13th band of the files: read by EuroSAT's order, the model's B8A is its value, not B09's or B10's
    for i, (path, label) in enumerate(reader.files):
        cls, n = EUROSAT_CLASSES[label], int(path.stem.split("_")[1]) - 1
        k = ("Forest", "River", "SeaLake").index(cls)
        assert s.images[i, :, 0, 0].tolist() == [band_value(b, 10 * k + n) for b in DEO]
    assert s.target.tolist() == [1] * 5 + [8] * 5 + [9] * 5  # Forest, River, SeaLake in EUROSAT_CLASSES order
    assert s.split.tolist() == [0, 0, 0, 1, 2] * 3
    data = split_samples(s, seed=3)
    assert [len(getattr(data, x).images) for x in SPLITS] == [9, 3, 3] and data.split == "official splits"
    limited = reader.samples(limit=2, seed=1)
    assert [int((limited.split == i).sum()) for i in range(3)] == [2, 2, 2]


def test_eurosat_band_descriptions_and_layout_errors(tmp_path):
    shuffled = ["B8A", "B12", "B11", "B10", "B09", "B08", "B07", "B06", "B05", "B04", "B03", "B02", "B01"]
    s = EuroSAT(eurosat_layout(tmp_path / "named", descriptions=shuffled)).samples()  # files naming their bands B8A, B12, ..., B1
    assert s.images[0, :, 0, 0].tolist() == [band_value(b, 0) for b in DEO]
    bad = eurosat_layout(tmp_path / "bad", per_class=1, lists=False)
    with rasterio.open(next((bad / "EuroSAT_MS" / "Forest").iterdir()), "r+") as ds: ds.set_band_description(5, "Red edge 1")
    with pytest.raises(BandError, match=r"expected band descriptions naming sentinel2_l1c bands.*found \['Red edge 1'\]"): EuroSAT(bad).samples()
    unsplit = EuroSAT(eurosat_layout(tmp_path / "unsplit", lists=False)).samples()
    assert unsplit.split is None and "drawn" in unsplit.notes[1]
    (tmp_path / "extra" / "EuroSAT_MS" / "Forest").mkdir(parents=True); (tmp_path / "extra" / "EuroSAT_MS" / "Clouds").mkdir()
    with pytest.raises(EvaluationError, match=r"found also \['Clouds'\]"): EuroSAT(tmp_path / "extra")
    with pytest.raises(EvaluationError, match="expected EuroSAT class folders"): EuroSAT(tmp_path / "named" / "EuroSAT_MS" / "Forest")
    (tmp_path / "named" / "eurosat-val.txt").unlink()
    with pytest.raises(EvaluationError, match="expected all three split lists"): EuroSAT(tmp_path / "named")


# --- BigEarthNet-S2 v1 ---

def bigearthnet_layout(root, patches):
    "`BigEarthNet-v1.0/<patch>/<patch>_<band>.tif` at 120/60/20 px for 10/20/60 m, `<patch>_labels_metadata.json`, split lists."
    for name, (labels, split) in patches.items():
        folder = root / "BigEarthNet-v1.0" / name
        for b in BEN_BANDS:
            side = {10: 120, 20: 60, 60: 20}[GSD[b]]
            tif(folder / f"{name}_{b}.tif", np.full((side, side), band_value(b)), dtype="uint16")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}_labels_metadata.json").write_text(json.dumps({"labels": labels, "coordinates": {}, "projection": "", "tile_source": "",
                                                                         "acquisition_date": "2017-06-13 10:10:31"}))
    for s in SPLITS: (root / f"{s}.csv").write_text("".join(f"{n}\n" for n, (_, sp) in patches.items() if sp == s))
    return root


def test_bigearthnet_19_classes_resampling_and_splits(tmp_path):
    patches = {"S2A_MSIL2A_20170613T101031_0_45": (["Coniferous forest", "Pastures", "Port areas"], "train"),
               "S2A_MSIL2A_20170613T101031_0_46": (["Sea and ocean", "Estuaries"], "train"),
               "S2A_MSIL2A_20170613T101031_0_47": (["Continuous urban fabric", "Rice fields", "Olive groves"], "val"),
               "S2A_MSIL2A_20170613T101031_0_48": (["Bare rock"], "test")}
    reader = BigEarthNet(bigearthnet_layout(tmp_path, patches))
    s = reader.samples()
    assert s.kind == "multilabel" and s.images.shape == (4, 10, 120, 120) and len(BEN_19) == 19
    assert (s.images[:, :, 0, 0] == torch.tensor([float(band_value(b)) for b in DEO])).all()  # 20 m bands resampled to 120 px keep their value
    names = list(BEN_19)
    by_hand = {"S2A_MSIL2A_20170613T101031_0_45": {"Coniferous forest", "Pastures"},  # Port areas is not in the 19-class nomenclature
               "S2A_MSIL2A_20170613T101031_0_46": {"Marine waters"},  # sea and estuaries merge
               "S2A_MSIL2A_20170613T101031_0_47": {"Urban fabric", "Arable land", "Permanent crops"},
               "S2A_MSIL2A_20170613T101031_0_48": set()}  # bare rock is dropped: no class
    for i, p in enumerate(reader.patches):
        assert {names[k] for k in np.flatnonzero(s.target[i].numpy())} == by_hand[p]
    assert s.split.tolist() == [0, 0, 1, 2] and any("resampled bilinearly" in n for n in s.notes)
    (tmp_path / "BigEarthNet-v1.0" / "S2A_MSIL2A_20170613T101031_0_48" / "S2A_MSIL2A_20170613T101031_0_48_labels_metadata.json").write_text(json.dumps({"labels": ["Forest"]}))
    with pytest.raises(EvaluationError, match=r"expected CORINE level-3 labels of BigEarthNet .*found \['Forest'\]"): BigEarthNet(tmp_path).samples()


# --- So2Sat LCZ42 ---

def so2sat_layout(root, counts=(6, 3, 3), one_hot=True):
    h5py = pytest.importorskip("h5py")
    root.mkdir(parents=True, exist_ok=True)
    order = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
    for f, n in zip(("training.h5", "validation.h5", "testing.h5"), counts):
        sen2 = np.stack([np.stack([np.full((32, 32), band_value(b, i) / 10000) for b in order], -1) for i in range(n)])  # reflectance
        label = np.zeros((n, 17)); label[np.arange(n), np.arange(n) % 17] = 1
        if not one_hot: label[0, 1] = 1
        with h5py.File(root / f, "w") as h:
            h.create_dataset("sen1", data=np.zeros((n, 32, 32, 8))); h.create_dataset("sen2", data=sen2); h.create_dataset("label", data=label)
    return root


def test_so2sat_reflectance_scaled_and_labels_checked(tmp_path):
    s = So2Sat(so2sat_layout(tmp_path / "ok")).samples()
    assert s.images.shape == (12, 10, 32, 32) and s.classes == LCZ_CLASSES and len(LCZ_CLASSES) == 17
    assert torch.allclose(s.images[1, :, 0, 0], torch.tensor([float(band_value(b, 1)) for b in DEO]), atol=0.01)  # back to digital numbers
    assert s.target.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 0, 1, 2] and s.split.tolist() == [0] * 6 + [1] * 3 + [2] * 3
    with pytest.raises(EvaluationError, match="expected one-hot labels"): So2Sat(so2sat_layout(tmp_path / "bad", one_hot=False)).samples()
    (tmp_path / "v3" / "culture_10").mkdir(parents=True); so2sat_layout(tmp_path / "v3" / "culture_10")
    with pytest.raises(EvaluationError, match=r"pass one of the version folders \['culture_10'\]"): So2Sat(tmp_path / "v3")


# --- OSCD ---

def oscd_layout(root, cities, size=60, rect=False, png=False, mask_values=(1, 2)):
    "The three extracted zips: `<city>/imgs_1|imgs_2/..._B01.tif` per band at 10/20/60 m, `cm/<city>-cm.tif` (1/2) or `cm/cm.png` (0/255)."
    images = root / "Onera Satellite Change Detection dataset - Images"
    for city, (split, change) in cities.items():
        for d in (1, 2):
            for b in L1C_ORDER:
                f = 1 if rect else int(GSD[b] // 10)
                value = band_value(b, 100 * d)
                folder = images / city / (f"imgs_{d}_rect" if rect else f"imgs_{d}")
                tif(folder / (f"{b}.tif" if rect else f"S2A_OPER_{city}_{d}_{b}.tif"), np.full((size // f, size // f), value), dtype="uint16")
        (images / city / "dates.txt").write_text("date_1: 20151004\ndate_2: 20170310\n")
        labels = root / f"Onera Satellite Change Detection dataset - {split.capitalize()} Labels" / city / "cm"
        m = np.zeros((size, size), np.uint8); m[change] = 1
        if png:
            labels.mkdir(parents=True, exist_ok=True)
            with rasterio.open(labels / "cm.png", "w", driver="PNG", width=size, height=size, count=1, dtype="uint8") as ds: ds.write(m * 255, 1)
        else: tif(labels / f"{city}-cm.tif", np.where(m == 1, mask_values[1], mask_values[0]), dtype="uint8")
    for s in ("train", "test"): (images / f"{s}.txt").write_text(",".join(c for c, (sp, _) in cities.items() if sp == s))
    return root


def test_oscd_masks_of_one_and_two_are_not_all_change(tmp_path):
    cities = {"abudhabi": ("train", np.s_[:30, :]), "aguasclaras": ("train", np.s_[:, :15]), "beihai": ("train", np.s_[:6, :6]),
              "bercy": ("train", np.s_[30:, 30:]), "brasilia": ("test", np.s_[:30, :30]), "chongqing": ("test", np.s_[:1, :1])}
    s = OSCD(oscd_layout(tmp_path / "tif", cities)).samples(chip=30)
    assert s.kind == "change" and s.unit == "city" and s.images.shape[1:] == (2, 10, 30, 30) and len(s) == 24
    change = s.target.float().mean().item()
    by_hand = (1800 + 900 + 36 + 900 + 900 + 1) / (6 * 3600)  # the changed pixels of the six masks (value 2), not every non-zero one
    assert abs(change - by_hand) < 1e-6
    assert (s.images[:, 0, DEO.index("B11"), 0, 0] == band_value("B11", 100)).all() and (s.images[:, 1, DEO.index("B11")] == band_value("B11", 200)).all()
    assert sorted(set(s.split.tolist())) == [0, 2] and int((s.split == 2).sum()) == 8
    data = split_samples(s, seed=0)
    assert "val drawn from the official train cities" in data.split and len(data.test.images) == 8
    png = OSCD(oscd_layout(tmp_path / "png", cities, rect=True, png=True)).samples(chip=30)
    assert torch.equal(png.target, s.target) and any("imgs_1_rect" in n for n in png.notes)
    with pytest.raises(EvaluationError, match=r"expected only the declared change values \[1, 2\].*found \[0, 1\]"):
        OSCD(oscd_layout(tmp_path / "zero_one", cities, mask_values=(0, 1))).samples(chip=30)


# --- Sen1Floods11 ---

def sen1floods11_layout(root, chips, size=64, bad_value=None):
    "v1.1: `data/flood_events/HandLabeled/{S2Hand,LabelHand}` and `splits/flood_handlabeled/flood_*_data.csv`."
    hand = root / "v1.1" / "data" / "flood_events" / "HandLabeled"
    rows = {}
    for name, split in chips.items():
        tif(hand / "S2Hand" / f"{name}_S2Hand.tif", np.stack([np.full((size, size), band_value(b)) for b in L1C_ORDER]), dtype="uint16")
        lab = np.zeros((size, size), np.int16); lab[: size // 2] = 1; lab[:, : size // 4] = -1
        if bad_value is not None: lab[0, -1] = bad_value
        tif(hand / "LabelHand" / f"{name}_LabelHand.tif", lab)
        rows.setdefault(split, []).append(f"{name}_S1Hand.tif,{name}_LabelHand.tif")
    lists = root / "v1.1" / "splits" / "flood_handlabeled"
    lists.mkdir(parents=True, exist_ok=True)
    for split, f in (("train", "flood_train_data.csv"), ("val", "flood_valid_data.csv"), ("test", "flood_test_data.csv"), ("bolivia", "flood_bolivia_data.csv")):
        (lists / f).write_text("\n".join(rows.get(split, [])) + "\n")
    return root


def test_sen1floods11_minus_one_is_ignored_not_a_class(tmp_path):
    chips = {"Ghana_103272": "train", "India_1018327": "train", "Spain_7370579": "val", "USA_430764": "test", "Bolivia_103757": "bolivia"}
    reader = Sen1Floods11(sen1floods11_layout(tmp_path, chips))
    s = reader.samples(chip=32)
    assert s.classes == ("not_water", "water") and set(s.target.unique().tolist()) == {0, 1, IGNORE}
    assert (s.images[:, DEO.index("B8A"), 0, 0] == band_value("B8A")).all()  # B8A is the 9th band of S2Hand
    # each 64 px chip: -1 in the left quarter, water in the top half; the 32 px chips cover it exactly
    labelled = (s.target != IGNORE).sum().item()
    assert labelled == 4 * 64 * 48 and (s.target == 1).sum().item() == 4 * 32 * 48
    assert sorted(set(s.split.tolist())) == [0, 1, 2] and "Bolivia_103757" not in reader.chips
    assert "Bolivia_103757" in Sen1Floods11(tmp_path, test_split="bolivia").chips
    with pytest.raises(EvaluationError, match=r"found also \[2\]"): Sen1Floods11(sen1floods11_layout(tmp_path / "bad", chips, bad_value=2)).samples()


# --- GEO-Bench ---

class _Info:
    def __init__(self, *args): self.__dict__.update(zip(self.fields, args))


def geobench_modules(monkeypatch):
    "Stand-ins of GEO-Bench's classes under its module names, as its pickles refer to them (the package does not install here)."
    mods = {m: types.ModuleType(m) for m in ("geobench", "geobench.dataset", "geobench.label", "geobench.task")}
    spec = {"geobench.dataset": {"Sentinel2": ("name", "alt_names", "spatial_resolution", "wavelength"), "Landsat8": ("name", "alt_names", "spatial_resolution", "wavelength"),
                                 "SegmentationClasses": ("name", "spatial_resolution", "n_classes", "_class_names")},
            "geobench.label": {"Classification": ("n_classes", "_class_names"), "MultiLabelClassification": ("n_classes", "class_name"),
                               "SemanticSegmentation": ("n_classes", "_class_names")},
            "geobench.task": {"TaskSpecifications": ("dataset_name", "bands_info", "spatial_resolution", "benchmark_name", "patch_size", "n_time_steps", "label_type")}}
    classes = {}
    for m, cs in spec.items():
        for name, fields in cs.items():
            c = type(name, (_Info,), {"fields": fields, "__module__": m, "__qualname__": name})
            setattr(mods[m], name, c); classes[name] = c
    for m, mod in mods.items(): monkeypatch.setitem(sys.modules, m, mod)
    return classes


def geobench_layout(root, C, task, kind, n=(4, 2, 2), landsat=False):
    h5py = pytest.importorskip("h5py")
    names = ("01 - Coastal aerosol", "02 - Blue", "03 - Green", "04 - Red", "05 - Vegetation Red Edge", "06 - Vegetation Red Edge", "07 - Vegetation Red Edge",
             "08 - NIR", "08A - Vegetation Red Edge", "09 - Water vapour", "10 - SWIR - Cirrus", "11 - SWIR", "12 - SWIR")
    infos = [C["Landsat8" if landsat else "Sentinel2"](nm, (nm.split()[0],), 10, 0.5) for nm in names]
    folder = root / ("classification_v1.0" if kind != "segmentation" else "segmentation_v1.0") / task
    folder.mkdir(parents=True)
    label_type = {"classification": C["Classification"](3, ["a", "b", "c"]), "multilabel": C["MultiLabelClassification"](3, ["a", "b", "c"]),
                  "segmentation": C["SemanticSegmentation"](3, ["a", "b", "c"])}[kind]
    (folder / "task_specs.pkl").write_bytes(pickle.dumps(C["TaskSpecifications"](task, infos, 10.0, folder.parent.name, (16, 16), 1, label_type), protocol=4))
    partition, k = {}, 0
    for part, count in zip(("train", "valid", "test"), n):
        partition[part] = []
        for _ in range(count):
            name = f"sample_{k}"
            attrs = {i.name: dict(date=None, date_id=None, spatial_resolution=10.0, band_info=i, meta_info={}, transform=None, crs=None) for i in infos}
            attrs["bands_order"] = [i.name for i in infos]
            with h5py.File(folder / f"{name}.hdf5", "w") as f:
                for b, i in zip(L1C_ORDER, infos): f.create_dataset(i.name, data=np.full((16, 16), band_value(b, k), np.int16))
                if kind == "segmentation":
                    f.create_dataset("label", data=(np.arange(16)[None, :] // 6).repeat(16, 0).astype(np.int16))
                    attrs["bands_order"].append("label"); attrs["label"] = dict(band_info=C["SegmentationClasses"]("label", 10.0, 3, ["a", "b", "c"]))
                else: attrs["label"] = k % 3 if kind == "classification" else np.array([1, k % 2, 0])
                f.attrs["pickle"] = str(pickle.dumps(attrs))
            partition[part].append(name); k += 1
    (folder / "default_partition.json").write_text(json.dumps(partition))
    (folder / "band_stats.json").write_text("{}")
    return root


def test_geobench_tasks_without_the_geobench_package(tmp_path, monkeypatch):
    C = geobench_modules(monkeypatch)
    geobench_layout(tmp_path, C, "m-eurosat", "classification")
    geobench_layout(tmp_path, C, "m-bigearthnet", "multilabel")
    geobench_layout(tmp_path, C, "m-cashew-plantation", "segmentation")
    geobench_layout(tmp_path, C, "m-forestnet", "classification", landsat=True)
    for m in list(sys.modules):
        if m.startswith("geobench"): monkeypatch.delitem(sys.modules, m)  # the reader must not need the classes
    s = GeoBench(tmp_path, "m-eurosat").samples()
    assert s.kind == "classification" and s.classes == ("a", "b", "c") and s.target.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert s.images[5, :, 0, 0].tolist() == [band_value(b, 5) for b in DEO] and s.split.tolist() == [0] * 4 + [1] * 2 + [2] * 2
    ml = GeoBench(tmp_path, "m-bigearthnet").samples()
    assert ml.kind == "multilabel" and ml.target.tolist()[:3] == [[1, 0, 0], [1, 1, 0], [1, 0, 0]]
    seg = GeoBench(tmp_path, "m-cashew-plantation").samples(chip=8)
    assert seg.kind == "segmentation" and seg.images.shape[1:] == (10, 8, 8) and set(seg.target.unique().tolist()) == {0, 1, 2}
    with pytest.raises(BandError, match=r"found its Sentinel-2 bands \[\]"): GeoBench(tmp_path, "m-forestnet").samples()  # Landsat's 04 - Red is not B04
    with pytest.raises(EvaluationError, match=r"expected the GEO-Bench task 'm-brick-kiln'.*found tasks \['m-bigearthnet', 'm-cashew-plantation', 'm-eurosat', 'm-forestnet'\]"):
        GeoBench(tmp_path, "m-brick-kiln")


def test_geobench_pickles_that_would_run_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self): return (eval, ("1 + 1",))
    with pytest.raises(EvaluationError, match=r"found a pickled builtins.eval: refused"): safe_unpickle(pickle.dumps(Evil()))
    import os
    class Shell:
        def __reduce__(self): return (os.system, ("true",))
    with pytest.raises(EvaluationError, match="refused"): safe_unpickle(pickle.dumps(Shell()))
    assert safe_unpickle(pickle.dumps({"a": np.arange(3), "b": (1, 2.0)}))["a"].tolist() == [0, 1, 2]


# --- torchgeo ---

def test_torchgeo_eurosat_class_on_fixture_files(tmp_path):
    pytest.importorskip("torchgeo")
    nested = tmp_path / "ds" / "images" / "remote_sensing" / "otherDatasets" / "sentinel_2" / "tif"
    eurosat_layout(tmp_path / "flat")
    (nested.parent).mkdir(parents=True)
    (tmp_path / "flat" / "EuroSAT_MS").rename(nested)
    for s in SPLITS: (tmp_path / "flat" / f"eurosat-{s}.txt").rename(tmp_path / f"eurosat-{s}.txt")
    s = torchgeo_samples("EuroSAT", tmp_path)
    assert s.classes == ("Forest", "River", "SeaLake") and len(s) == 15 and s.kind == "classification"
    assert sorted(s.images[:, :, 0, 0].tolist()) == sorted([band_value(b, 10 * k + n) for b in DEO] for k in range(3) for n in range(5))
    assert [int((s.split == i).sum()) for i in range(3)] == [9, 3, 3]
    with pytest.raises(EvaluationError, match="expected a dataset class of torchgeo.datasets"): torchgeo_samples("EuroSet", tmp_path)
    with pytest.raises(EvaluationError, match="expected EuroSAT data"): torchgeo_samples("EuroSAT", tmp_path / "nothing")


def test_torchgeo_oscd_class_two_dates_and_masks(tmp_path):
    pytest.importorskip("torchgeo")
    cities = {"abudhabi": ("train", np.s_[:20, :]), "beihai": ("train", np.s_[:, :10]), "bercy": ("train", np.s_[:5, :5]), "brasilia": ("test", np.s_[:30, :30])}
    oscd_layout(tmp_path, cities, rect=True, png=True)
    s = torchgeo_samples("OSCD", tmp_path, chip=30)
    assert s.kind == "change" and s.images.shape[1:] == (2, 10, 30, 30) and sorted(set(s.split.tolist())) == [0, 2]
    assert abs(s.target.float().mean().item() - (1200 + 600 + 25 + 900) / (4 * 3600)) < 1e-6
    assert (s.images[:, 1, DEO.index("B04")] == band_value("B04", 200)).all()


# --- the command line, every --dataset name ---

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from dualdistill.train import Trainer, checkpoints
    from test_train import tiny
    out = tmp_path_factory.mktemp("run")
    Trainer(tiny(steps=2), out).fit(progress=False)
    return checkpoints(out)[-1]


def cli(*argv):
    p = argparse.ArgumentParser(prog="dualdistill")
    add_evaluate_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(["evaluate", *argv])


@pytest.mark.parametrize("name, extra", [("eurosat", []), ("bigearthnet", []), ("so2sat", ["--limit", "30"]), ("oscd", ["--chip", "32"]),
                                         ("sen1floods11", ["--chip", "64"]), ("geobench:m-eurosat", [])])
def test_cli_every_dataset(checkpoint, tmp_path, name, extra, capsys):
    pytest.importorskip("h5py")
    root = fake_benchmark(name, tmp_path / "data")
    out = tmp_path / "eval"
    args = cli("--checkpoint", str(checkpoint), "--dataset", name, "--root", str(root), "--out", str(out), "--threads", "1", "--quiet", *extra)
    args.run(args)
    report = json.loads((out / "report.json").read_text())
    task = {"bigearthnet": "multilabel", "oscd": "change", "sen1floods11": "segmentation"}.get(name, "linear")
    assert task in report["tasks"] and report["summary"][0]["encoder"] == "student MS"
    metrics = report["results"]["student MS"][task]
    assert metrics["protocol"].startswith(("frozen", "|before")) and metrics["split"]
    assert {"report.json", "comparison.png"} <= {p.name for p in out.iterdir()}
    assert "wrote" in capsys.readouterr().out


def test_cli_torchgeo_dataset_and_errors(checkpoint, tmp_path):
    pytest.importorskip("torchgeo")
    root = fake_benchmark("eurosat", tmp_path / "tg", torchgeo=True)
    args = cli("--checkpoint", str(checkpoint), "--dataset", "torchgeo:EuroSAT", "--root", str(root), "--out", str(tmp_path / "o"), "--quiet",
               "--compare", "--seeds", "0", "1", "--task", "knn", "linear")
    args.run(args)
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert [r["encoder"] for r in report["summary"]] == ["student MS", "student RGB", "student EMA", "optical teacher", "random student", "band statistics"]
    assert len(report["runs"]) == 2 and "spread" in report and report["paired_differences"][0]["a"] == "student MS"
    args = cli("--checkpoint", str(checkpoint), "--dataset", "eurosat", "--out", str(tmp_path / "o"))
    with pytest.raises(EvaluationError, match="expected --root"): args.run(args)
    args = cli("--checkpoint", str(checkpoint), "--dataset", "landcover", "--root", str(root), "--out", str(tmp_path / "o"))
    with pytest.raises(EvaluationError, match=r"expected a dataset from \['eurosat', 'bigearthnet'"): args.run(args)
    args = cli("--checkpoint", str(checkpoint), "--dataset", "so2sat", "--root", str(root), "--out", str(tmp_path / "o"))
    with pytest.raises(EvaluationError, match=r"expected \['training.h5', 'validation.h5', 'testing.h5'\]"): args.run(args)


def test_reflectance_is_refused_with_the_scale_that_fits(checkpoint, tmp_path):
    pytest.importorskip("h5py")
    from dualdistill.benchmarks import So2Sat
    root = fake_benchmark("so2sat", tmp_path / "s", n=(20, 8, 8))
    def data(bands):  # So2Sat as reflectance again: the reader's scaling undone
        s = So2Sat(root).samples(bands)
        return {"classification": dataclasses.replace(s, images=s.images / 10000)}
    from dualdistill.evaluate import run_evaluation
    with pytest.raises(EvaluationError, match=r"the data look like reflectance; multiply them by 10000 \(--scale 10000\)"):
        run_evaluation(checkpoint, tmp_path / "o", ["linear"], data=data, progress=False)
    report = run_evaluation(checkpoint, tmp_path / "o", ["linear"], data=data, scale=10000, progress=False)
    assert "values multiplied by 10000" in report["notes"]["classification"]


def test_kfold_of_a_benchmark(tmp_path):
    s = EuroSAT(eurosat_layout(tmp_path, per_class=6, lists=False)).samples()
    folds = kfold_samples(s, 3, seed=0)
    assert sorted(torch.cat([f.test.target for f in folds]).tolist()) == sorted(s.target.tolist())
    assert all(len(f.test.images) == 6 and len(f.val.images) == 6 and len(f.train.images) == 6 for f in folds)
