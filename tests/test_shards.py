"""Shards (`dualdistill shard`, `ShardDataset`, `pretrain --data SHARDS`): the three source kinds with their georeference,
exact resume from shards, every chip once over 2 processes x 2 workers, bad input, and a killed conversion resumed."""
import json, os, shutil, signal, socket, subprocess, sys, textwrap
from pathlib import Path
import numpy as np
import pytest
import rasterio
import torch
from dualdistill.data import ChipDataset, Scene, sample_scene, training_stats, write_geotiff
from dualdistill.sensors import DEO_BANDS, BandError, SENTINEL2_L1C, sensor
from dualdistill.shards import SHARD_META, ShardDataset, ShardError, is_shard_folder, read_shard_meta, shard, shard_folder
from test_train import tiny, weights

ROOT = Path(__file__).resolve().parents[1]

def _crop(path, rows, cols, size, hole=None):
    "A `size` px GeoTIFF of the bundled scene's 13 bands from (rows, cols), with band names; `hole`: (r, c) of a 4 x 4 px nodata square."
    s = sample_scene()
    a = s.read((rows, cols, size, size)).astype(np.uint16)
    if hole is not None: a[:, hole[0]:hole[0] + 4, hole[1]:hole[1] + 4] = 0
    return write_geotiff(path, a, s.crs, s.window_transform((rows, cols, size, size)), nodata=0, band_names=s.bands.names)

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    "A 192 px crop with a nodata square in its second 48 px chip (15 chips kept), a clean one (16 chips), and their shards."
    d = tmp_path_factory.mktemp("corpus")
    holed, clean = _crop(d / "holed.tif", 400, 300, 192, hole=(10, 60)), _crop(d / "clean.tif", 100, 500, 192)
    return dict(holed=holed, clean=clean, holed_shards=shard(holed, d / "holed_shards", chip_size=48, part_chips=5, progress=False),
                clean_shards=shard(clean, d / "clean_shards", chip_size=48, progress=False))

def _same_chips(a: ShardDataset, b: ShardDataset):
    "Both shard folders hold the same chips, with the same descriptions, in the same order."
    assert len(a) == len(b)
    for i in range(len(a)):
        x, y = a.record(i), b.record(i)
        assert np.array_equal(x["image"], y["image"]) and x["image"].dtype == y["image"].dtype and bytes(x["about"]) == bytes(y["about"])

def test_geotiff_grid_keeps_georeference_and_the_nodata_rule(corpus):
    scene = Scene.open(corpus["holed"], bands=DEO_BANDS.names)
    grid = ChipDataset(scene, 48)  # today's rule on the same grid: the chip with the nodata square is left out
    ds = ShardDataset(corpus["holed_shards"])
    assert len(ds) == len(grid) == 15 and (0, 48, 48, 48) not in [w for _, w in grid.windows]
    for i in range(len(ds)):
        it, ref = ds[i], grid[i]
        assert it["window"] == ref["window"] and torch.equal(it["image"], ref["image"]) and it["image"].dtype == torch.float32
        assert it["crs"] == scene.crs and it["transform"] == ref["transform"] and it["source"] == str(corpus["holed"])
        assert it["bands"].names == DEO_BANDS.names and it["index"] == i
    meta = read_shard_meta(corpus["holed_shards"])
    assert meta["chips"] == 15 and meta["bands"] == list(DEO_BANDS.names) and meta["chip_size"] == 48
    assert ds.stats == training_stats([scene], DEO_BANDS.names, sensor("sentinel2_l1c").stats, 48)  # stored, not recomputed
    assert sorted(p.name for p in Path(corpus["holed_shards"]).iterdir()) == ["chunk-0-0.bin", "chunk-1-0.bin", "chunk-2-0.bin",
                                                                             "chunk-3-0.bin", SHARD_META, "index.json"]

def test_hdf5_images_of_the_authors_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    s = sample_scene()  # 13 bands in the L1C order, as in the authors' `images` (N, 13, H, W)
    images = np.stack([s.read((r, r, 96, 96)) for r in (0, 300, 600)])
    images[1, 5, 60, 10] = np.nan  # image 1's chip at (48, 0) holds a non-finite pixel: dropped like a nodata chip
    with h5py.File(tmp_path / "fmow.h5", "w") as f: f["images"] = images
    ds = ShardDataset(shard(tmp_path / "fmow.h5", tmp_path / "shards", chip_size=48, progress=False))
    keep = [(k, (r, c)) for k in range(3) for r in (0, 48) for c in (0, 48) if (k, r, c) != (1, 48, 0)]
    assert len(ds) == len(keep) == 11
    idx = SENTINEL2_L1C.indices(DEO_BANDS.names)
    for i, (k, (r, c)) in enumerate(keep):
        it = ds[i]
        assert np.array_equal(it["image"].numpy(), images[k][idx, r:r + 48, c:c + 48]) and it["window"] == (r, c, 48, 48)
        assert it["source"] == f"{tmp_path / 'fmow.h5'}:images[{k}]" and it["crs"] is None and it["transform"] is None
        assert it["bands"].names == DEO_BANDS.names
    with h5py.File(tmp_path / "ten.h5", "w") as f: f["images"] = images[:, :10]
    with pytest.raises(ShardError, match=r"expected `images` of shape \(N, 13, H, W\) .* in .*ten.h5, found \(3, 10, 96, 96\)"):
        shard(tmp_path / "ten.h5", tmp_path / "ten", chip_size=48, progress=False)
    with h5py.File(tmp_path / "other.h5", "w") as f: f["data"] = images
    with pytest.raises(ShardError, match=r"expected an `images` dataset in .*other.h5 .*, found \['data'\]"):
        shard(tmp_path / "other.h5", tmp_path / "other", chip_size=48, progress=False)
    assert not (tmp_path / "ten").exists() and not (tmp_path / "other").exists()

def test_ssl4eo_folders_one_geotiff_per_band(tmp_path):
    "SSL4EO-S12 layout: location/season/B2.tif ... (no leading zero), 20 m bands on a coarser grid; read as a padded-name band folder is."
    s = sample_scene()
    root, ref_dirs = tmp_path / "ssl4eo" / "s2c", []
    for loc, (r0, c0) in enumerate([(0, 0), (500, 200)]):
        for season, dr in enumerate((0, 64)):
            season_dir = root / f"{loc:07d}" / f"2020{season + 3:02d}01T000000_2020{season + 3:02d}01T000000_T18SVG"
            ref = tmp_path / "padded" / f"{loc}{season}"
            season_dir.mkdir(parents=True); ref.mkdir(parents=True)
            for b in DEO_BANDS.names:
                f = 1 if b in ("B02", "B03", "B04", "B08") else 2  # 10 m and 20 m bands, as SSL4EO-S12 stores them
                w = (r0 + dr, c0, 64, 64)
                a = s.read(w, [b])[0].reshape(64 // f, f, 64 // f, f).mean((1, 3)).round().astype(np.uint16)
                t = s.window_transform(w) * rasterio.Affine.scale(f)
                write_geotiff(season_dir / f"{b.replace('B0', 'B')}.tif", a, s.crs, t)
                write_geotiff(ref / f"T18SVG_{b}.tif", a, s.crs, t)
            ref_dirs.append(ref)
    ds = ShardDataset(shard(tmp_path / "ssl4eo", tmp_path / "shards", chip_size=32, progress=False))
    assert len(ds) == 16 and len(read_shard_meta(ds.folder)["sources"]) == 4
    assert sorted(p.name for p in ds.folder.glob("*.bin")) == ["chunk-0-0.bin"]  # parts run across sources: one chunk, not one per folder
    for i in range(16):
        it, scene = ds[i], Scene.open(ref_dirs[i // 4], bands=DEO_BANDS.names)
        assert it["window"] == ((i % 4) // 2 * 32, i % 2 * 32, 32, 32) and Path(it["source"]).parent.name == f"{i // 8:07d}"
        assert np.array_equal(it["image"].numpy(), scene.read(it["window"])), i  # 20 m bands resampled as Scene.open does
        assert it["crs"] == scene.crs and it["transform"] == scene.window_transform(it["window"])
    (root / "0000000" / "bad").mkdir()
    write_geotiff(root / "0000000" / "bad" / "B2.tif", np.ones((64, 64), np.uint16), s.crs, s.transform)
    with pytest.raises(ShardError, match=r"expected a file for each of bands .* in the band folder .*bad, found none for \['B04', 'B03', 'B05'"):
        shard(tmp_path / "ssl4eo", tmp_path / "shards2", chip_size=32, progress=False)
    assert not (tmp_path / "shards2").exists()

def test_resume_from_shards_is_bit_identical_and_views_match_geotiffs(tmp_path, corpus):
    from dualdistill.train import Trainer, checkpoints, read_checkpoint
    def make():
        cfg = tiny(steps=6)  # 15 chips, batch 4: 3 steps an epoch, so the run crosses an epoch and resumes inside one
        cfg.data.paths = [str(corpus["holed_shards"])]
        return cfg
    full = Trainer(make(), tmp_path / "full")
    assert full.steps_per_epoch == 3 and isinstance(full.dataset, ShardDataset)
    full.fit(progress=False)
    part = Trainer(make(), tmp_path / "part")
    part.fit(until=4, progress=False)
    again = Trainer(make(), tmp_path / "part", resume=True)
    assert again.step == 4
    again.fit(progress=False)
    a, b = weights(full), weights(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ca, cb = read_checkpoint(checkpoints(tmp_path / "full")[-1]), read_checkpoint(checkpoints(tmp_path / "part")[-1])
    assert ca["step"] == cb["step"] == 6 and all(torch.equal(ca["student"][k], cb["student"][k]) for k in ca["student"])
    # the same chip gives the same views as from the GeoTIFF: same statistics, same per-item seed (seed, epoch, item)
    grid = ChipDataset(Scene.open(corpus["holed"], bands=DEO_BANDS.names), 48, seed=0, transform=full.views)
    full.dataset.set_epoch(1); grid.set_epoch(1)
    for i in (0, 7):
        u, v = full.dataset[i]["image"], grid[i]["image"]
        assert len(u) == len(v) == 2 + 2 and all(torch.equal(x, y) for x, y in zip(u, v))

class _Tagged(ShardDataset):
    "Items that say which DataLoader worker, in which process, read them."
    def __getitem__(self, i):
        return dict(super().__getitem__(i), worker=torch.utils.data.get_worker_info().id, pid=os.getpid())

def _cover(rank: int, port: int, folder: str, out: str):
    "One process of a torchrun-like job (gloo, 2 processes): two epochs of its share, read by 2 DataLoader workers."
    from dualdistill.data import collate_chips
    from dualdistill.train import ChipSampler, init_distributed
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    rank, world = init_distributed(torch.device("cpu"))
    ds = _Tagged(folder)
    sampler, seen = ChipSampler(len(ds), 2, rank, world, seed=3), []
    for epoch in range(2):
        ds.set_epoch(epoch); sampler.set_epoch(epoch)
        for b in torch.utils.data.DataLoader(ds, 2, sampler=sampler, num_workers=2, collate_fn=collate_chips, drop_last=True):
            seen += [dict(epoch=epoch, index=i, window=list(w), worker=k, pid=p) for i, w, k, p in zip(b["index"], b["window"], b["worker"], b["pid"])]
    torch.distributed.barrier(); torch.distributed.destroy_process_group()
    Path(out, f"rank{rank}.json").write_text(json.dumps(dict(rank=rank, world=world, seen=seen)))

def test_two_processes_two_workers_see_every_chip_once(tmp_path, corpus):
    import multiprocessing
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    ctx = multiprocessing.get_context("fork")  # forked like torchrun's processes would start, without importing torch again
    procs = [ctx.Process(target=_cover, args=(r, port, str(corpus["clean_shards"]), str(tmp_path))) for r in range(2)]
    for p in procs: p.start()
    for p in procs: p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    runs = [json.loads((tmp_path / f"rank{k}.json").read_text()) for k in range(2)]
    assert [(x["rank"], x["world"]) for x in runs] == [(0, 2), (1, 2)]
    ds = ShardDataset(corpus["clean_shards"])
    for epoch in range(2):
        seen = [s for x in runs for s in x["seen"] if s["epoch"] == epoch]
        assert sorted(s["index"] for s in seen) == list(range(16))  # 16 chips, 2 x 2 per step: every chip once
        assert all(s["window"] == list(ds[s["index"]]["window"]) for s in seen)  # and the chip asked for
        for x in runs:  # both workers of both processes read, in processes of their own
            mine = [s for s in x["seen"] if s["epoch"] == epoch]
            assert {s["worker"] for s in mine} == {0, 1} and len({s["pid"] for s in mine}) == 2 and os.getpid() not in {s["pid"] for s in mine}
    orders = [[s["index"] for s in runs[0]["seen"] if s["epoch"] == e] for e in range(2)]
    assert orders[0] != orders[1]  # each epoch its own order

def test_bad_shard_folders_and_sources(tmp_path, corpus):
    from dualdistill.train import Trainer
    plain = tmp_path / "plain"; plain.mkdir(); (plain / "notes.txt").write_text("x")
    with pytest.raises(ShardError, match=rf"expected a shard folder written by `dualdistill shard` at {plain} .*, found \['notes.txt'\]"):
        ShardDataset(plain)
    assert not is_shard_folder(plain) and shard_folder([str(plain)]) is None
    damaged = tmp_path / "damaged"
    shutil.copytree(corpus["clean_shards"], damaged)
    chunk = damaged / "chunk-0-0.bin"
    size = chunk.stat().st_size
    with open(chunk, "r+b") as f: f.truncate(size - 1000)
    cfg = tiny(); cfg.data.paths = [str(damaged)]
    with pytest.raises(ShardError, match=rf"expected chunk-0-0.bin of {size} bytes in {damaged}, found {size - 1000} bytes: the shard is damaged"):
        Trainer(cfg, tmp_path / "run")
    rgb = shard(corpus["clean"], tmp_path / "rgb", bands=["B04", "B03", "B02"], chip_size=48, progress=False)
    cfg = tiny(); cfg.data.paths = [str(rgb)]
    with pytest.raises(BandError, match=r"expected shards of bands \['B04', 'B03', 'B02', 'B05'.*\(the config's data.bands\), found \['B04', 'B03', 'B02'\] in .*rgb"):
        Trainer(cfg, tmp_path / "run")
    cfg = tiny(); cfg.data.paths, cfg.data.chip_size = [str(corpus["clean_shards"])], 64
    with pytest.raises(ShardError, match=r"expected shards of 64 px chips .*, found 48 px in .*clean_shards: shard the sources again with --chip-size 64"):
        Trainer(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").glob("checkpoint_*"))
    empty = tmp_path / "empty"; empty.mkdir()
    with pytest.raises(ShardError, match=rf"expected raster files, band folders or HDF5 files in {empty}, found none"):
        shard(empty, tmp_path / "from_empty", progress=False)
    assert not (tmp_path / "from_empty").exists()
    s = sample_scene()
    write_geotiff(tmp_path / "blank.tif", np.zeros((13, 96, 96), np.uint16), s.crs, s.transform, nodata=0, band_names=s.bands.names)
    with pytest.raises(ShardError, match=r"expected chips with at most 0% nodata in .*blank.tif, found none \(nothing was written\)"):
        shard(tmp_path / "blank.tif", tmp_path / "from_blank", chip_size=48, progress=False)
    assert not (tmp_path / "from_blank" / SHARD_META).exists() and not list((tmp_path / "from_blank").iterdir())
    with pytest.raises(ShardError, match=r"expected a new or unfinished shard folder at .*clean_shards, found a finished one"):
        shard(corpus["clean"], corpus["clean_shards"], chip_size=48, progress=False)

_KILLED = textwrap.dedent("""
    import os, signal, sys
    from litdata.streaming.writer import BinaryWriter
    from dualdistill.shards import shard
    real, calls = BinaryWriter.add_item, [0]
    def add_item(self, *a, **k):
        calls[0] += 1
        if calls[0] == 8: os.kill(os.getpid(), signal.SIGKILL)  # inside the second part (parts of 5 chips), its first finished
        return real(self, *a, **k)
    BinaryWriter.add_item = add_item
    shard(sys.argv[1], sys.argv[2], chip_size=48, part_chips=5, progress=False)
""")

def test_killed_conversion_resumes_to_the_same_chips(tmp_path, corpus, monkeypatch):
    (tmp_path / "kill.py").write_text(_KILLED)
    out = tmp_path / "killed"
    r = subprocess.run([sys.executable, str(tmp_path / "kill.py"), str(corpus["holed"]), str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (out / SHARD_META).exists() and not (out / "index.json").exists() and (out / ".shard_work" / "part-000000.json").exists()
    with pytest.raises(ShardError, match=rf"expected a finished shard folder at {out}, found an unfinished `dualdistill shard` run"):
        ShardDataset(out)
    with pytest.raises(ShardError, match=r"expected the sources and options of the unfinished run .* found other \['chip_size', 'stride'\]"):
        shard(corpus["holed"], out, chip_size=64, part_chips=5, progress=False)
    shard(corpus["holed"], out, chip_size=48, part_chips=5, progress=False)  # the first part is kept, the rest written
    _same_chips(ShardDataset(out), ShardDataset(corpus["holed_shards"]))
    # a writer that fails mid-way (a full disk, say) in this process: the same, and the error is the writer's
    from litdata.streaming.writer import BinaryWriter
    real, calls = BinaryWriter.add_item, [0]
    def failing(self, *a, **k):
        calls[0] += 1
        if calls[0] == 12: raise OSError(28, "No space left on device")
        return real(self, *a, **k)
    monkeypatch.setattr(BinaryWriter, "add_item", failing)
    with pytest.raises(OSError, match="No space left"): shard(corpus["holed"], tmp_path / "full_disk", chip_size=48, part_chips=5, progress=False)
    assert not (tmp_path / "full_disk" / SHARD_META).exists() and is_shard_folder(tmp_path / "full_disk")  # unfinished, and read as such
    with pytest.raises(ShardError, match="found an unfinished `dualdistill shard` run"): ShardDataset(tmp_path / "full_disk")
    monkeypatch.setattr(BinaryWriter, "add_item", real)
    _same_chips(ShardDataset(shard(corpus["holed"], tmp_path / "full_disk", chip_size=48, part_chips=5, progress=False)),
                ShardDataset(corpus["holed_shards"]))
