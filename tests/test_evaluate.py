"""Evaluation: metrics against hand-computed values, index-derived labels, spatial splits, encoders, user data, the CLI."""
import argparse, json, math
from pathlib import Path
import numpy as np
import pytest
import rasterio
import torch
from dualdistill.data import write_geotiff
from dualdistill.sensors import DEO_BANDS, DEO_STATS, EUROSAT_MS, BandError, DualDistillError
from dualdistill.train import Trainer, checkpoints, load_run
from test_train import tiny  # the seconds-long training config
from dualdistill.evaluate import (IGNORE, INDEX_BANDS, INDEX_CLASSES, SPLITS, BandStatsEncoder, EvaluationError, LinearProbe,
                                  OpticalTeacherEncoder, Samples, Split, StudentEncoder, TaskData, accuracy, add_evaluate_parser, assign_blocks,
                                  average_precision, canonical_band, check_value_scale, chip_windows, confusion_matrix, dense_samples,
                                  evaluate_encoder, f1_scores, file_band_names, fit_linear_probe, fit_multilabel_probe, folder_classification,
                                  index_labels, iou_scores, kfold_samples, knn_scores, macro_f1, mean_and_spread, mean_average_precision,
                                  mean_iou, multilabel_f1, paired_differences, predict_dense, read_raster, reference_encoders, run_encoders,
                                  run_evaluation, scene_tasks, simulate_change, split_samples, split_windows, upsample, user_samples, user_tasks,
                                  UperNetHead, encode_stages, fit_upernet, predict_upernet)
from dualdistill.views import normalise_chip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    Trainer(tiny(steps=2), out).fit(progress=False)
    return checkpoints(out)[-1]


@pytest.fixture(scope="module")
def tasks():
    return scene_tasks(seed=0)


def cli(*argv):
    p = argparse.ArgumentParser(prog="dualdistill")
    add_evaluate_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(["evaluate", *argv])


# --- metrics, by hand ---

def test_confusion_accuracy_f1_iou_by_hand():
    # truth   0 0 0 1 1 2 2 2 IGNORE
    # pred    0 0 1 1 2 2 2 0 1
    cm = confusion_matrix([0, 0, 0, 1, 1, 2, 2, 2, IGNORE], [0, 0, 1, 1, 2, 2, 2, 0, 1], 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert accuracy(cm) == pytest.approx(5 / 8)
    # class 0: TP 2 FP 1 FN 1 -> F1 4/6, IoU 2/4; class 1: TP 1 FP 1 FN 1 -> 2/4, 1/3; class 2: TP 2 FP 1 FN 1 -> 4/6, 2/4
    assert f1_scores(cm) == pytest.approx([4 / 6, 2 / 4, 4 / 6])
    assert macro_f1(cm) == pytest.approx((4 / 6 + 2 / 4 + 4 / 6) / 3)
    assert iou_scores(cm) == pytest.approx([2 / 4, 1 / 3, 2 / 4])
    assert mean_iou(cm) == pytest.approx((2 / 4 + 1 / 3 + 2 / 4) / 3)


def test_metrics_skip_absent_classes_and_check_labels():
    cm = confusion_matrix(np.array([[0, 1], [IGNORE, 1]]), np.array([[0, 1], [3, 1]]), 4)  # the IGNORE pixel's prediction 3 is dropped
    assert cm.sum() == 3 and np.isnan(iou_scores(cm)[2:]).all() and mean_iou(cm) == 1.0 and macro_f1(cm) == 1.0
    with pytest.raises(EvaluationError, match=r"expected labels in 0..1 or 255, found \[2\]"): confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(EvaluationError, match="as many predictions"): confusion_matrix([0, 1], [0], 2)


def test_change_f1_by_hand():
    truth = np.array([[0, 0, 1, 1], [0, 1, 1, IGNORE]])
    pred = np.array([[0, 1, 1, 0], [0, 1, 1, 1]])
    cm = confusion_matrix(truth, pred, 2)  # change: TP 3, FP 1, FN 1
    assert f1_scores(cm)[1] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert iou_scores(cm)[1] == pytest.approx(3 / 5)


def test_knn_vote_by_hand():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])
    q = torch.tensor([[3.0, 1.0]])
    # cosines with q: 3/sqrt(10), 1/sqrt(10), 4/sqrt(20), -3/sqrt(10); k = 3 keeps the first three
    s = [3 / math.sqrt(10), 1 / math.sqrt(10), 4 / math.sqrt(20)]
    T = 0.5
    expected = [math.exp(s[0] / T), math.exp(s[1] / T) + math.exp(s[2] / T), 0.0]
    assert knn_scores(bank, labels, q, 3, k=3, temperature=T)[0].tolist() == pytest.approx(expected)
    assert knn_scores(bank, labels, q, 3, k=3, temperature=T).argmax().item() == 1
    assert knn_scores(bank, labels, q, 3, k=1, temperature=T).argmax().item() == 0
    assert knn_scores(bank, labels, q, 3, k=100, temperature=T)[0, 2].item() == pytest.approx(math.exp(-3 / math.sqrt(10) / T))
    with pytest.raises(EvaluationError, match="k >= 1"): knn_scores(bank, labels, q, 3, k=0)


def test_linear_probe_sweep_and_dense_prediction():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 4, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    probe = fit_linear_probe(x[:200], y[:200], x[200:], y[200:], 2)
    assert probe.setting["val_macro_f1"] > 0.95
    one = fit_linear_probe(x[:200], y[:200], x[200:], y[200:], 2, weight_decays=[probe.setting["weight_decay"]], lrs=[probe.setting["lr"]])
    assert torch.allclose(one.linear.weight, probe.linear.weight, atol=1e-6)
    maps = torch.randn(2, 4, 3, 3, generator=g)
    direct = probe.forward_map(upsample(maps, (12, 12))).argmax(1)
    assert torch.equal(predict_dense(probe, maps, (12, 12)), direct)


# --- data ---

def test_index_labels_of_synthetic_pixels():
    # B02, B03, B04, B08, B11 reflectance; the comment gives the indices that decide
    px = np.array([(0.04, 0.05, 0.03, 0.02, 0.005),   # NDVI -0.2, MNDWI 0.818: water
                   (0.02, 0.04, 0.02, 0.25, 0.10),    # NDVI 0.852, B11 0.10: forest
                   (0.04, 0.07, 0.04, 0.36, 0.18),    # NDVI 0.8, B11 0.18: field vegetation
                   (0.09, 0.11, 0.15, 0.25, 0.30),    # NDVI 0.25, B11 0.30, MNDWI -0.463: bare soil
                   (0.30, 0.31, 0.32, 0.36, 0.40),    # brightness 0.31, NDVI 0.059: sand
                   (0.05, 0.06, 0.05, 0.10, 0.13),    # NDVI 0.333: too high for bare soil, too low for vegetation
                   (0.05, 0.06, 0.04, 0.05, 0.04),    # NDVI 0.111, MNDWI 0.2: nothing
                   (0.0, 0.0, 0.0, 0.0, 0.0)],        # all zero (indices NaN)
                  np.float64).T[:, None, :]
    assert index_labels(px, INDEX_BANDS)[0].tolist() == [0, 1, 2, 3, 4, IGNORE, IGNORE, IGNORE]
    with pytest.raises(BandError, match="B11"): index_labels(px[:4], INDEX_BANDS[:4])


def test_spatial_split_keeps_splits_apart():
    labels = np.random.default_rng(0).integers(0, 3, (500, 460)).astype(np.uint8)
    a = assign_blocks(500, 460, block=100, labels=labels, n_classes=3, seed=3)
    assert a.shape == (5, 5) and sorted(np.bincount(a.ravel()).tolist()) == [5, 5, 15]
    edge = assign_blocks(500, 460, block=100, min_side=80)  # the last column of blocks is 60 px wide
    assert (edge[:, 4] == -1).all() and sorted(np.bincount(edge[edge >= 0]).tolist()) == [4, 4, 12]
    gap = 12
    ws = split_windows(a, 500, 460, chip=32, stride=16, block=100, gap=gap)
    for s in SPLITS:
        for r, c, h, w in ws[s]:
            assert 0 <= r and r + h <= 500 and 0 <= c and c + w <= 460
            assert a[r // 100, c // 100] == SPLITS.index(s) and a[(r + h - 1) // 100, (c + w - 1) // 100] == SPLITS.index(s)
    masks = {s: np.zeros((500, 460), bool) for s in SPLITS}
    for s in SPLITS:
        for r, c, h, w in ws[s]: masks[s][max(r - gap, 0):r + h + gap, max(c - gap, 0):c + w + gap] = True  # windows grown by the gap
    for s in SPLITS:
        own = np.zeros((500, 460), bool)
        for r, c, h, w in ws[s]: own[r:r + h, c:c + w] = True
        for t in SPLITS:
            if t != s: assert not (own & masks[t]).any(), f"{s} comes within {gap} px of {t}"
    with pytest.raises(EvaluationError, match="at least 3 blocks"): assign_blocks(100, 100, block=100)


def test_scene_tasks(tasks):
    c, s, ch = tasks["classification"], tasks["segmentation"], tasks["change"]
    assert c.bands.names == DEO_BANDS.names and c.classes == INDEX_CLASSES[:4] and s.classes == INDEX_CLASSES and ch.classes == ("no_change", "change")
    assert c.train.images.shape[1:] == (10, 32, 32) and s.test.images.shape[1:] == (10, 64, 64) and ch.val.images.shape[1:] == (2, 10, 64, 64)
    assert all(set(torch.unique(getattr(c, split).target).tolist()) == {0, 1, 2, 3} for split in SPLITS)
    assert set(torch.unique(s.train.target).tolist()) == {0, 1, 2, 3, 4, IGNORE}


def test_simulated_change_is_the_pasted_rectangle():
    images = (100 + 10 * np.arange(4)[:, None, None, None] + np.arange(3)[None, :, None, None]) * np.ones((4, 3, 32, 32), np.float32)
    labels = np.repeat(np.arange(4), 32 * 32).reshape(4, 32, 32)  # every chip is one class, so any source differs
    after, masks = simulate_change(images, labels, 4, seed=1, side=(8, 12), gain=0.05)
    for i in range(4):
        m = masks[i].astype(bool)
        rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
        assert 8 <= len(rows) <= 12 and 8 <= len(cols) <= 12 and m.sum() == len(rows) * len(cols)
        ratio = after[i][:, ~m] / images[i][:, ~m]  # outside the rectangle: the same pixels times one gain per band
        assert np.allclose(ratio, ratio[:, :1], rtol=1e-5) and np.all(np.abs(ratio - 1) <= 0.05 + 1e-6)
        inside = after[i][:, m] / ratio[:, :1]
        assert any(np.allclose(inside, images[j][:, m]) for j in range(4) if j != i), "pasted from another chip"


def test_user_layouts(tmp_path, scene):
    full = scene.read()
    order = [scene.bands.names.index(b) for b in EUROSAT_MS.names]
    for c in ("x", "y"):
        for i in range(3):
            (tmp_path / "cls" / c).mkdir(parents=True, exist_ok=True)
            write_geotiff(tmp_path / "cls" / c / f"{i}.tif", full[order, 64 * i:64 * i + 64, :64].astype(np.uint16) + (c == "y"), scene.crs, scene.transform)
    data = folder_classification(tmp_path / "cls", seed=0)
    assert [len(getattr(data, s).images) for s in SPLITS] == [2, 2, 2] and data.classes == ("x", "y")
    deo = [scene.bands.names.index(b) for b in DEO_BANDS.names]
    img, label = data.test.images[0], int(data.test.target[0])
    assert any(torch.equal(img, torch.from_numpy(full[deo, 64 * i:64 * i + 64, :64] + label)) for i in range(3))

    for sub in ("images", "masks", "A", "B", "label"): (tmp_path / "dense" / sub).mkdir(parents=True)
    mask = np.zeros((300, 300), np.uint8); mask[:, 150:] = 7; mask[:20] = 255
    write_geotiff(tmp_path / "dense" / "images" / "t.tif", full[:, :300, :300].astype(np.uint16), scene.crs, scene.transform, band_names=scene.bands.names)
    write_geotiff(tmp_path / "dense" / "masks" / "t.tif", mask, scene.crs, scene.transform)
    for sub in ("A", "B"): write_geotiff(tmp_path / "dense" / sub / "t.tif", full[:, :300, :300].astype(np.uint16), scene.crs, scene.transform, band_names=scene.bands.names)
    write_geotiff(tmp_path / "dense" / "label" / "t.tif", (mask == 7).astype(np.uint8), scene.crs, scene.transform)
    d = user_tasks(tmp_path / "dense", ["segmentation", "change"])
    seg = d["segmentation"]
    assert seg.classes == ("class_0", "class_7") and set(torch.unique(seg.train.target).tolist()) <= {0, 1, IGNORE}
    assert d["change"].train.images.shape[1:] == (2, 10, 64, 64) and set(torch.unique(d["change"].train.target).tolist()) <= {0, 1}
    with pytest.raises(EvaluationError, match=r"expected sub-folders \['A', 'B', 'label'\]"): user_tasks(tmp_path / "cls", ["change"])
    with pytest.raises(DualDistillError, match="class folders"): user_tasks(tmp_path / "nothing", ["classification"])


# --- encoders ---

def test_feature_shapes_of_every_encoder(checkpoint, tasks):
    run = load_run(checkpoint)
    encoders = run_encoders(run) | reference_encoders(run, seed=0)
    assert list(encoders) == ["student MS", "student RGB", "student EMA", "optical teacher", "random student", "band statistics"]
    x = tasks["segmentation"].test.images[:3]
    D = run.student.embed_dim
    expected = {"student MS": (D, D), "student RGB": (D, D), "student EMA": (D, D), "optical teacher": (320, 112),
                "random student": (D, D), "band statistics": (20, 20)}
    for name, enc in encoders.items():
        f = enc(x)
        assert f.image.shape == (3, expected[name][0]) and f.patches.shape == (3, expected[name][1], 4, 4), name
        assert torch.isfinite(f.image).all() and torch.isfinite(f.patches).all()
    ms, ema, rnd = (encoders[n](x).image for n in ("student MS", "student EMA", "random student"))
    assert not torch.allclose(ms, rnd) and not torch.allclose(ms, ema)
    with pytest.raises(BandError, match="expected 10 channels"): encoders["student MS"](x[:, :4])
    with pytest.raises(EvaluationError, match="'ms' or 'rgb'"): StudentEncoder(run.student, run.stats, "swir")

    x = x[:2]
    for name, enc in encoders.items():  # the maps the UperNet head reads
        stages = enc.stages(x)
        widths = {"optical teacher": [112, 320], "band statistics": [20]}.get(name, [D] * 4)
        assert [m.shape[1] for m in stages] == widths, name
    z = normalise_chip(x, run.student.bands, run.stats)
    with torch.no_grad():
        for path, inp in (("MS", z), ("RGB", z[:, run.student.bands.rgb_indices])):
            assert all(torch.equal(a, b) for a, b in zip(encoders[f"student {path}"].stages(x), run.student.stage_features(inp)))
        assert torch.equal(encoders["band statistics"].stages(x)[0], encoders["band statistics"](x).patches)


# --- the UperNet head ---

def _toy_segmentation(n=40, seed=0):
    "Chips of 16 px whose four 8 x 8 quarters each carry a class; a fine map says the class, a coarse one is noise."
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 3, (n, 2, 2), generator=g)
    target = coarse.repeat_interleave(8, 1).repeat_interleave(8, 2)
    target[:, :2] = IGNORE
    fine = torch.nn.functional.one_hot(coarse, 3).permute(0, 3, 1, 2).float().repeat_interleave(2, 2).repeat_interleave(2, 3)
    return [fine + 0.3 * torch.randn(fine.shape, generator=g), torch.randn(n, 8, 2, 2, generator=g)], target


def test_upernet_head_on_maps_of_any_scales_learns_and_repeats():
    swin_like = [torch.randn(2, 32 * 2 ** i, 16 // 2 ** i, 16 // 2 ** i) for i in range(4)]
    vit_like = [torch.randn(2, 24, 4, 4) for _ in range(4)]
    for maps in (swin_like, vit_like, vit_like[:1]):
        assert UperNetHead([m.shape[1] for m in maps], 5).eval()(maps, (64, 48)).shape == (2, 5, 64, 48)
    with pytest.raises(EvaluationError, match=r"expected maps of widths \[24\], found \[\(2, 32, 16, 16\)"):
        UperNetHead([24], 5)(swin_like, (64, 64))
    maps, target = _toy_segmentation()
    fit = lambda seed: fit_upernet([m[:30] for m in maps], target[:30], [m[30:] for m in maps], target[30:], 3, steps=40, eval_every=20, seed=seed)
    head = fit(0)
    pred = predict_upernet(head, [m[30:] for m in maps], (16, 16))
    assert mean_iou(confusion_matrix(target[30:], pred, 3)) == head.setting["val_miou"] > 0.9 and head.setting["best_step"] in (20, 40)
    assert all(torch.equal(a, b) for a, b in zip(head.state_dict().values(), fit(0).state_dict().values()))
    assert not torch.equal(head.classifier.weight, fit(1).classifier.weight)
    assert torch.allclose(head.mean_0, maps[0][:30].mean((0, 2, 3))) and not any(p.requires_grad for p in head.parameters())
    with pytest.raises(EvaluationError, match="expected at least 2 training chips"):
        fit_upernet([m[:1] for m in maps], target[:1], [m[30:] for m in maps], target[30:], 3)


def test_evaluate_encoder_unknown_task(tasks):
    enc = BandStatsEncoder(DEO_BANDS, DEO_STATS)
    with pytest.raises(EvaluationError, match=r"expected tasks from \['knn', 'linear', 'multilabel', 'segmentation', 'change'\], found \['kmeans'\]"):
        evaluate_encoder(enc, tasks, ["kmeans"])
    with pytest.raises(EvaluationError, match="expected \\['change'\\] data"):
        evaluate_encoder(enc, {"classification": tasks["classification"]}, ["knn", "change"])


# --- the command line ---

def test_cli_writes_report_and_plots(checkpoint, tmp_path):
    out = tmp_path / "eval"
    args = cli("--checkpoint", str(checkpoint), "--out", str(out), "--compare", "--threads", "1", "--quiet")
    args.run(args)
    names = {p.name for p in out.iterdir()}
    assert {"report.json", "comparison.png", "confusion_knn.png", "confusion_linear.png", "confusion_segmentation.png",
            "segmentation_map.png", "segmentation_map.tif"} <= names
    report = json.loads((out / "report.json").read_text())
    assert [r["encoder"] for r in report["summary"]] == ["student MS", "student RGB", "student EMA", "optical teacher", "random student", "band statistics"]
    for row in report["summary"]:
        assert set(row) == {"encoder", "knn_top1", "knn_macro_f1", "linear_top1", "linear_macro_f1", "segmentation_miou", "change_f1"}
        assert all(0 <= v <= 1 for k, v in row.items() if k != "encoder")
    assert report["results"]["band statistics"]["change"]["probe"]["weight_decay"] in (0.0, 1e-4, 1e-3, 1e-2)
    with open(out / "comparison.png", "rb") as f: assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with rasterio.open(out / "segmentation_map.tif") as ds:
        assert ds.crs.to_epsg() == 32618 and ds.shape == (1000, 1000) and json.loads(ds.tags()["classes"]) == list(INDEX_CLASSES)
        assert set(np.unique(ds.read(1)).tolist()) <= set(range(5))


def test_cli_upernet_segmentation(checkpoint, tmp_path):
    out = tmp_path / "upernet"
    args = cli("--checkpoint", str(checkpoint), "--task", "segmentation", "--head", "upernet", "--out", str(out), "--threads", "1", "--quiet")
    args.run(args)
    report = json.loads((out / "report.json").read_text())
    seg = report["results"]["student MS"]["segmentation"]
    assert report["head"] == seg["head"] == "upernet" and report["protocols"]["segmentation"] == seg["protocol"]
    assert seg["protocol"].startswith("frozen stage maps") and "200 AdamW steps of 16 chips" in seg["protocol"]
    assert 0 <= seg["miou"] <= 1 and seg["probe"]["best_step"] % 25 == 0 and seg["n_test_pixels"] > 0
    with rasterio.open(out / "segmentation_map.tif") as ds:
        assert ds.tags()["labels"] == "UperNet head trained on index-derived labels" and set(np.unique(ds.read(1)).tolist()) <= set(range(5)) | {IGNORE}
    with pytest.raises(SystemExit): cli("--checkpoint", str(checkpoint), "--head", "unet")
    with pytest.raises(EvaluationError, match=r"expected a segmentation head from \['linear', 'upernet'\], found 'unet'"):
        run_evaluation(checkpoint, tmp_path / "never", head="unet")
    assert not (tmp_path / "never").exists()


def test_cli_bad_input(checkpoint, tmp_path):
    args = cli("--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o"))
    with pytest.raises(EvaluationError, match=r"expected a checkpoint file \(pretraining or student\) at .*missing.pt, found nothing"): args.run(args)
    args = cli("--checkpoint", str(checkpoint), "--task", "knn", "segmentaton", "--out", str(tmp_path / "o"))
    with pytest.raises(EvaluationError, match=r"found \['knn', 'segmentaton'\]"): args.run(args)
    args = cli("--checkpoint", str(checkpoint), "--task", "knn", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"))
    with pytest.raises(EvaluationError, match="expected a data folder"): args.run(args)
    (tmp_path / "not_a_checkpoint.pt").write_bytes(b"hello")
    with pytest.raises(DualDistillError): run_evaluation(tmp_path / "not_a_checkpoint.pt", tmp_path / "o", ["knn"])
    assert not (tmp_path / "o").exists()


# --- band names, splits, folds, chips ---

def test_band_names_are_matched_leniently_or_refused(tmp_path):
    assert [canonical_band(n) for n in ("B1", "b01", "B8a", "B08A", "S2_B12", "12 - SWIR", "Band 4", "S1_B1", "VV", "")] == \
           ["B01", "B01", "B8A", "B8A", "B12", "B12", "B04", None, None, None]
    named = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]  # Sen1Floods11-style descriptions
    assert file_band_names(named, EUROSAT_MS.names) == ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
    with pytest.raises(BandError, match=r"found \['NIR narrow'\]"): file_band_names(named[:8] + ["NIR narrow"] + named[9:], None)
    with pytest.raises(BandError, match="2 of 13 without a description"): file_band_names(named[:11] + ["", ""], None)
    with pytest.raises(BandError, match=r"expected 13 bands .* \(a file without band names\), found 12"): file_band_names([""] * 12, EUROSAT_MS.names)
    # a 13-band file in Sentinel-2 order but naming its bands B1..B12: its B8A is the 9th band, not EuroSAT's 13th
    a = (np.arange(13, dtype=np.uint16)[:, None, None] * np.ones((1, 4, 4), np.uint16)) + 100
    from dualdistill.data import write_geotiff
    from rasterio.transform import from_origin
    write_geotiff(tmp_path / "x.tif", a, "EPSG:32632", from_origin(0, 0, 10, 10), band_names=named)
    x, ok = read_raster(tmp_path / "x.tif", ["B8A", "B12", "B04"], EUROSAT_MS.names)
    assert x[:, 0, 0].tolist() == [108, 112, 103] and ok.all()


def toy_samples(n_per_class=(10, 10, 10), groups=None, split=None):
    labels = torch.tensor([k for k, n in enumerate(n_per_class) for _ in range(n)])
    return Samples("classification", ("a", "b", "c"), DEO_BANDS, torch.zeros(len(labels), 10, 4, 4), labels,
                   np.arange(len(labels)) if groups is None else np.asarray(groups), split, source="toy")


def test_split_samples_keeps_official_splits_and_groups():
    drawn = split_samples(toy_samples(), seed=0)
    assert [np.bincount(getattr(drawn, s).target, minlength=3).tolist() for s in SPLITS] == [[6, 6, 6], [2, 2, 2], [2, 2, 2]]
    assert split_samples(toy_samples(), seed=1).test.target.tolist() != [] and "seed 1" in split_samples(toy_samples(), seed=1).split
    official = np.array([0] * 6 + [1] * 2 + [2] * 2 + [0] * 6 + [1] * 2 + [2] * 2 + [0] * 6 + [1] * 2 + [-1] * 2)
    kept = split_samples(toy_samples(split=official), seed=5)
    assert len(kept.train.images) == 18 and len(kept.val.images) == 6 and len(kept.test.images) == 4  # the unlisted two are unused
    assert kept.split == "official splits"
    train_test = np.where(np.arange(30) % 5 == 4, 2, 0)
    carved = split_samples(toy_samples(split=train_test), seed=0)
    assert len(carved.test.images) == 6 and len(carved.val.images) > 0 and len(carved.train.images) + len(carved.val.images) == 24
    # groups (e.g. images or blocks) never straddle two splits
    grouped = toy_samples(groups=np.repeat(np.arange(6), 5))
    g = split_samples(grouped, seed=2)
    sizes = sorted(len(getattr(g, s).images) for s in SPLITS)
    assert all(v % 5 == 0 for v in sizes) and sum(sizes) == 30
    with pytest.raises(EvaluationError, match=r"expected at least 3 samples to draw train, val and test splits from, found 2 in toy"):
        split_samples(toy_samples((1, 1, 0)))
    mixed = toy_samples(groups=np.zeros(30), split=train_test)
    with pytest.raises(EvaluationError, match="in several"): split_samples(mixed)


def test_kfold_tests_every_sample_once():
    folds = kfold_samples(toy_samples((9, 6, 3)), folds=3, seed=4)
    assert len(folds) == 3 and sorted(torch.cat([f.test.target for f in folds]).tolist()) == [0] * 9 + [1] * 6 + [2] * 3
    assert all(np.bincount(f.test.target, minlength=3).tolist() == [3, 2, 1] for f in folds)  # each class dealt round the folds
    assert all(torch.equal(f.val.target.sort().values, folds[(i + 1) % 3].test.target.sort().values) for i, f in enumerate(folds))
    with pytest.raises(EvaluationError, match="at least 3 folds"): kfold_samples(toy_samples(), folds=2)
    with pytest.raises(EvaluationError, match=r"expected at least 5 samples for 5 folds, found 4"): kfold_samples(toy_samples((2, 2, 0)), folds=5)


def test_dense_chips_of_small_images_and_what_they_need():
    img = np.zeros((10, 101, 100), np.float32)
    lab = np.zeros((101, 100), np.int64); lab[:, 50:] = 1
    with pytest.raises(EvaluationError, match=r"found 1 in 1 image\(s\) of 101 x 100 px: pass --chip 32"):
        dense_samples([img], [lab], "segmentation", ("a", "b"), DEO_BANDS, chip=64)
    s = dense_samples([img], [lab], "segmentation", ("a", "b"), DEO_BANDS, chip=32)
    assert s.unit == "block of 48 px" and len(np.unique(s.groups)) == 4 and s.images.shape[1:] == (10, 32, 32)
    # block (0, 0) of 48 px keeps 8 px (half the 16 px gap) from its inner edges: starts 0 and 8; the 4 px last column holds none
    assert chip_windows(101, 100, 32, block=48)[0] == [(0, 0, 32, 32), (0, 8, 32, 32), (8, 0, 32, 32), (8, 8, 32, 32)]
    assert chip_windows(101, 100, 32, block=48)[2] == [] and chip_windows(70, 70, 32)[0][-1] == (38, 38, 32, 32)  # the last flush with the edge
    lab[:40] = IGNORE
    few = dense_samples([img, img, img], [lab, lab, lab], "segmentation", ("a", "b"), DEO_BANDS, chip=32, splits=[0, 0, 2])
    # rows start at 0, 32, 64 and 69 (flush), columns at 0, 32, 64 and 68; the first row is all ignored and dropped: 12 of 16 chips per image
    assert few.unit == "image" and len(few) == 3 * 12 and set(few.split.tolist()) == {0, 2}
    with pytest.raises(EvaluationError, match="at least 32 x 32 px"): dense_samples([img[:, :20]], [lab[:20]], "segmentation", ("a", "b"), DEO_BANDS, chip=32)


def test_mask_values_are_checked_against_the_task(tmp_path, scene):
    from dualdistill.data import write_geotiff
    full = scene.read()[:, :300, :300].astype(np.uint16)
    for sub in ("images", "masks", "A", "B", "label"): (tmp_path / sub).mkdir()
    mask = np.zeros((300, 300), np.int16); mask[:, 150:] = 1; mask[:40] = -1  # Sen1Floods11 style: -1 means no data
    for sub in ("images", "A", "B"): write_geotiff(tmp_path / sub / "t.tif", full, scene.crs, scene.transform, band_names=scene.bands.names)
    write_geotiff(tmp_path / "masks" / "t.tif", mask, scene.crs, scene.transform)
    with pytest.raises(EvaluationError, match=r"found \[-1, 0, 1\]: negative values mean no data .* --ignore -1"): user_samples(tmp_path, ["segmentation"])
    seg = user_samples(tmp_path, ["segmentation"], ignore=[-1])["segmentation"]
    assert seg.classes == ("class_0", "class_1") and set(seg.target.unique().tolist()) <= {0, 1, IGNORE}
    change = np.where(mask == 1, 2, 1).astype(np.uint8)  # OSCD style: 1 no change, 2 change
    write_geotiff(tmp_path / "label" / "t.tif", change, scene.crs, scene.transform)
    ch = user_samples(tmp_path, ["change"])["change"]
    assert "change mask values 1 = no change, 2 = change" in ch.notes[0]
    assert abs(float((ch.target == 1).float().mean()) - float((change == 2).mean())) < 0.05  # about half, not every pixel
    change[0, 0] = 3
    write_geotiff(tmp_path / "label" / "t.tif", change, scene.crs, scene.transform)
    with pytest.raises(EvaluationError, match=r"expected exactly two label values .* found \[1, 2, 3\]"): user_samples(tmp_path, ["change"])
    assert user_samples(tmp_path, ["change"], ignore=[3])["change"].target.max() == IGNORE
    with pytest.raises(EvaluationError, match=r"only the declared change values \[0, 2\]"): user_samples(tmp_path, ["change"], change_values=(0, 2))


# --- multi-label ---

def test_multilabel_metrics_by_hand():
    truth = [[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]]
    pred = [[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 0, 0]]
    # class 0: TP 2; class 1: TP 1, FN 1; class 2: TP 1, FP 1, FN 1. Pooled: TP 4, FP 1, FN 2
    m = multilabel_f1(truth, pred)
    assert m["micro_f1"] == pytest.approx(8 / 11) and m["per_class_f1"] == pytest.approx([1, 2 / 3, 1 / 2]) and m["macro_f1"] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    # AP with ties: scores 0.9, 0.9 | 0.5 | 0.3, 0.3 for truth 1, 0 | 1 | 1, 0: P 1/2 at R 1/3, 2/3 at 2/3, 3/5 at 1
    assert average_precision([[1], [0], [1], [1], [0]], [[0.9], [0.9], [0.5], [0.3], [0.3]])[0] == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3)
    ap = average_precision([[1, 0], [0, 0]], [[0.2, 0.1], [0.8, 0.3]])
    assert ap[0] == pytest.approx(0.5) and np.isnan(ap[1]) and mean_average_precision([[1, 0], [0, 0]], [[0.2, 0.1], [0.8, 0.3]]) == pytest.approx(0.5)
    assert np.isnan(multilabel_f1([[0, 0]], [[0, 0]])["micro_f1"])
    with pytest.raises(EvaluationError, match="expected 0/1 labels"): multilabel_f1([[2, 0]], [[1, 0]])


def test_multilabel_probe_f1_equals_hand_computed_value():
    # three prototype chips of constant bands, each bright in one band of its own (band statistics tell them apart), labels {0}, {1}, {0, 2}
    protos = {"A": 3, "B": 5, "C": 7}
    labels = {"A": [1, 0, 0], "B": [0, 1, 0], "C": [1, 0, 1]}
    chip = lambda band, jitter=0.0: torch.full((10, 16, 16), 1500.0 + jitter).index_fill_(0, torch.tensor([band]), 3500.0 + jitter)
    g = torch.Generator().manual_seed(0)
    train_x = torch.stack([chip(protos[p], 20 * float(torch.randn(1, generator=g))) for p in "ABC" * 20])
    train_y = torch.tensor([labels[p] for p in "ABC" * 20])
    val = Split(torch.stack([chip(protos[p]) for p in "ABC"]), torch.tensor([labels[p] for p in "ABC"]))
    # test chips are prototypes, so the probe predicts the prototype's labels; their true labels differ on purpose:
    # A {0} -> TP0; A {0,1} -> TP0, FN1; B {1,2} -> TP1, FN2; C {2} -> FP0, TP2
    test = Split(torch.stack([chip(protos[p]) for p in "AABC"]), torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]]))
    data = TaskData("multilabel", ("x", "y", "z"), DEO_BANDS, Split(train_x, train_y), val, test, "prototypes", "by hand")
    r = evaluate_encoder(BandStatsEncoder(DEO_BANDS, DEO_STATS), {"multilabel": data})["multilabel"]
    # class 0: TP 2, FP 1 -> 4/5; class 1: TP 1, FN 1 -> 2/3; class 2: TP 1, FN 1 -> 2/3; pooled TP 4, FP 1, FN 2 -> 8/11
    assert r.metrics["micro_f1"] == pytest.approx(8 / 11) and r.metrics["macro_f1"] == pytest.approx((4 / 5 + 2 / 3 + 2 / 3) / 3)
    assert r.metrics["per_class_f1"] == pytest.approx({"x": 4 / 5, "y": 2 / 3, "z": 2 / 3}) and r.metrics["probe"]["val_micro_f1"] == 1.0
    assert "sigmoid per class" in r.metrics["protocol"] and r.metrics["split"] == "by hand" and r.metrics["sizes"] == {"train": 60, "val": 3, "test": 4}
    with pytest.raises(EvaluationError, match=r"expected \(N, 3\) labels of 0 or 1 .* found values \[2\]"):
        TaskData("multilabel", ("x", "y", "z"), DEO_BANDS, Split(train_x, train_y * 2), val, test, "bad")


# --- runs, spreads and paired differences ---

def test_mean_spread_and_paired_differences_by_hand():
    rows = lambda a, b: [dict(encoder="dual", linear_top1=a), dict(encoder="single", linear_top1=b)]
    records = [dict(seed=s, fold=None, summary=rows(a, b)) for s, (a, b) in enumerate([(0.8, 0.7), (0.9, 0.7), (0.7, 0.6)])]
    mean, sd = mean_and_spread(records)
    assert mean[0]["linear_top1"] == pytest.approx(0.8) and sd[0]["linear_top1"] == pytest.approx(0.1)  # sample sd of 0.8, 0.9, 0.7
    d = paired_differences(records, [("dual", "single"), ("dual", "absent")])
    assert len(d) == 1 and d[0]["linear_top1"]["per_run"] == pytest.approx([0.1, 0.2, 0.1])
    assert d[0]["linear_top1"]["mean"] == pytest.approx(0.4 / 3) and d[0]["linear_top1"]["sd"] == pytest.approx(math.sqrt(((0.1 - 0.4 / 3) ** 2 * 2 + (0.2 - 0.4 / 3) ** 2) / 2))
    assert d[0]["linear_top1"]["clear"]  # mean 0.133 > sd 0.058, every run positive
    one = paired_differences(records[:1], [("dual", "single")])
    assert not one[0]["linear_top1"]["clear"] and math.isnan(one[0]["linear_top1"]["sd"])


def test_value_scale_check():
    x = torch.full((4, 10, 8, 8), 0.15)  # reflectance
    with pytest.raises(EvaluationError, match=r"look like reflectance; multiply them by 10000 \(--scale 10000\)"): check_value_scale(x, DEO_BANDS, DEO_STATS)
    check_value_scale(x * 10000, DEO_BANDS, DEO_STATS)


def test_cli_several_checkpoints_seeds_and_folds(checkpoint, tmp_path, scene):
    out = tmp_path / "multi"
    args = cli("--checkpoint", f"dual={checkpoint}", f"again={checkpoint}", "--task", "knn", "--seeds", "0", "1", "--out", str(out), "--quiet")
    args.run(args)
    report = json.loads((out / "report.json").read_text())
    assert [r["encoder"] for r in report["summary"]] == ["dual MS", "dual RGB", "dual EMA", "again MS", "again RGB", "again EMA"]
    assert [(r["seed"], r["fold"]) for r in report["runs"]] == [(0, None), (1, None)] and "spread" in report
    diffs = {(d["a"], d["b"]): d for d in report["paired_differences"]}
    assert diffs[("dual MS", "again MS")]["knn_top1"]["per_run"] == [0.0, 0.0]  # the same weights on the same splits
    assert report["runs"][0]["splits"]["classification"] != report["runs"][1]["splits"]["classification"]
    # a data folder, three folds
    from dualdistill.data import write_geotiff
    full = scene.read()
    order = [scene.bands.names.index(b) for b in EUROSAT_MS.names]
    for c in ("x", "y"):
        for i in range(4):
            (tmp_path / "cls" / c).mkdir(parents=True, exist_ok=True)
            write_geotiff(tmp_path / "cls" / c / f"{i}.tif", full[order, 64 * i:64 * i + 64, 300 * (c == "y"):300 * (c == "y") + 64].astype(np.uint16), scene.crs, scene.transform)
    args = cli("--checkpoint", str(checkpoint), "--data", str(tmp_path / "cls"), "--folds", "3", "--out", str(tmp_path / "folds"), "--quiet")
    args.run(args)
    report = json.loads((tmp_path / "folds" / "report.json").read_text())
    assert report["tasks"] == ["knn", "linear"] and [r["fold"] for r in report["runs"]] == [1, 2, 3]
    assert report["results"]["student MS"]["linear"]["split"].startswith("fold 1 of 3")
