"""Sharded corpora against GeoTIFF folders (issue 14): `pretrain` startup time and peak memory at 1k, 10k, 100k and 1M chips,
chips per second of one DataLoader worker with the DEO views, and the shard engine (litdata) against plain alternatives
on the same chips. Everything is written to a temporary folder outside the repository and removed at the end.

usage: python scripts/bench_shards.py [--keep DIR] [--views-items N]

Corpora: 256 px chips of the 10 DEO bands cut from the bundled scene on a 16 px grid (2,209 windows): 1,000 and 2,000
of them as GeoTIFF files (`--data folder/*.tif`, today's path), the 1,000 converted by `shard`; the 10k, 100k and 1M
shard folders repeat those chunks 10, 100 and 1,000 times (hard links, index entries repeated) because converting 100k real chips
would take too long here. Each startup is measured in a fresh subprocess: imports, `Trainer(cfg)` (opening the data,
statistics, model, calibrating the teacher on 16 images) and the first batch; peak RSS is the subprocess's VmHWM."""
import argparse, io, json, os, resource, shutil, subprocess, sys, tarfile, tempfile, time
from pathlib import Path
import numpy as np

DEO_BANDS_N = 10

def _rss_mb() -> float:
    "This process's peak resident memory so far, MB: VmHWM (ru_maxrss would carry the parent's peak over fork and exec)."
    return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")) / 1024

def child_startup(data: list[str], nofile: int | None):
    "Run in a subprocess: time to a constructed Trainer and its first batch, and peak memory; one JSON line."
    t0 = time.perf_counter()
    if nofile: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    import psutil, torch
    import dualdistill.train as train
    from dualdistill.train import Trainer, preset
    t_import, rss_import = time.perf_counter() - t0, psutil.Process().memory_info().rss / 2**20
    ready, views = {}, train.MultiCropViews
    def data_ready(*a, **k):  # the Trainer builds the views right after opening the data and its statistics
        ready.setdefault("t", time.perf_counter()); ready.setdefault("rss", psutil.Process().memory_info().rss / 2**20)
        return views(*a, **k)
    train.MultiCropViews = data_ready
    cfg = preset("demo")
    cfg.run.keep_freed_memory = False  # RSS then shows what is in use
    cfg.data.paths, cfg.data.chip_size, cfg.data.chips_per_epoch = data, 256, 1024
    cfg.teacher.calibration_images, cfg.optim.batch_size, cfg.optim.steps, cfg.run.threads = 16, 16, 1, 1
    out = tempfile.mkdtemp()
    try:
        t1 = time.perf_counter()
        trainer = Trainer(cfg, out)
        t_trainer = time.perf_counter() - t1
        batch = next(iter(trainer.loader(0)))
        t_batch = time.perf_counter() - t1 - t_trainer
        res = dict(ok=True, import_s=t_import, data_s=ready["t"] - t1, data_rss_mb=ready["rss"] - rss_import, trainer_s=t_trainer,
                   first_batch_s=t_batch, chips=len(trainer.dataset), rss_after_batch_mb=psutil.Process().memory_info().rss / 2**20,
                   rss_after_import_mb=rss_import, peak_rss_mb=_rss_mb(), open_files=len(psutil.Process().open_files()))
    except Exception as e:
        res = dict(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:160]}", import_s=t_import,
                   failed_after_s=time.perf_counter() - t1, peak_rss_mb=_rss_mb())
    finally: shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(res))

def child_rates(work: Path, n_views: int):
    "Run in a subprocess with one thread (as one DataLoader worker): chips/s with the DEO views, and raw reads per engine."
    import torch
    torch.set_num_threads(1)
    import rasterio
    from litdata import StreamingDataset
    from dualdistill.data import ChipDataset, Scene
    from dualdistill.shards import ShardDataset
    from dualdistill.train import preset
    from dualdistill.views import MultiCropViews
    shards, files = work / "shards_1k", sorted((work / "tifs").glob("*.tif"))[:1000]
    rng, res = np.random.default_rng(0), {}
    ds = ShardDataset(shards)
    views = MultiCropViews(ds.bands, ds.stats, preset("deo").views)
    def rate(fn, idx):
        fn(idx[0])  # open files, start threads
        t = time.perf_counter()
        for i in idx[1:]: fn(i)
        return (len(idx) - 1) / (time.perf_counter() - t)
    ds.transform = views
    res["shards + DEO views (2x224 + 10x96)"] = rate(ds.__getitem__, rng.integers(0, len(ds), n_views + 1).tolist())
    ds.transform = None
    res["shards, chip only (litdata, random index)"] = rate(ds.__getitem__, rng.integers(0, len(ds), 301).tolist())
    scenes = [Scene.open(f) for f in files[:200]]
    geo = ChipDataset(scenes, 256, length=10**6, seed=0, transform=views)
    res["GeoTIFF files + DEO views (ChipDataset, 200 files)"] = rate(geo.__getitem__, list(range(n_views + 1)))
    geo.transform = None
    res["GeoTIFF files, chip only (ChipDataset, 200 files open)"] = rate(geo.__getitem__, list(range(301)))
    def open_read(i):
        with rasterio.open(files[i]) as f: return f.read()
    res["GeoTIFF, open + read a random file (rasterio)"] = rate(open_read, rng.integers(0, 1000, 301).tolist())
    stream = iter(StreamingDataset(str(shards)))
    res["litdata StreamingDataset, sequential iteration"] = rate(lambda i: next(stream), list(range(301)))
    mm = np.load(work / "chips.npy", mmap_mode="r")
    res["numpy .npy memmap, random index"] = rate(lambda i: np.array(mm[i]), rng.integers(0, len(mm), 301).tolist())
    tar = tarfile.open(work / "chips.tar")  # the WebDataset layout (key.npy members), read in order with the stdlib
    members = iter(tar)
    res["tar of .npy (WebDataset layout), sequential"] = rate(lambda i: np.load(io.BytesIO(tar.extractfile(next(members)).read())), list(range(301)))
    print(json.dumps(res))

def replicate(src: Path, dst: Path, times: int):
    "A shard folder of `times` copies of `src`'s chunks (hard links) and index entries: `times` x its chips on no more disk."
    dst.mkdir()
    index, meta = json.loads((src / "index.json").read_text()), json.loads((src / "dualdistill_shards.json").read_text())
    chunks = []
    for k in range(times):
        for ch in index["chunks"]:
            name = f"r{k}-{ch['filename']}"
            os.link(src / ch["filename"], dst / name)
            chunks.append(dict(ch, filename=name))
    (dst / "index.json").write_text(json.dumps(dict(index, chunks=chunks)))
    (dst / "dualdistill_shards.json").write_text(json.dumps(dict(meta, chips=meta["chips"] * times)))
    return dst

def make_corpora(work: Path):
    "GeoTIFF chips (2,000 files), the first 1,000 sharded, the 10k/100k/1M replicas, and the same 1,000 chips as .npy and tar."
    import rasterio
    from dualdistill.data import SAMPLE_PATH, Scene
    from dualdistill.sensors import DEO_BANDS
    from dualdistill.shards import shard
    scene = Scene.open(SAMPLE_PATH, bands=DEO_BANDS.names)
    whole = scene.read().astype(np.uint16)
    windows = [(r, c) for r in range(0, scene.height - 255, 16) for c in range(0, scene.width - 255, 16)][:2000]
    (work / "tifs").mkdir()
    t = time.perf_counter()
    for k, (r, c) in enumerate(windows):
        with rasterio.open(work / "tifs" / f"chip_{k:05d}.tif", "w", driver="GTiff", width=256, height=256, count=DEO_BANDS_N, dtype="uint16",
                           crs=scene.crs, transform=scene.window_transform((r, c, 256, 256)), nodata=0) as f:
            f.write(whole[:, r:r + 256, c:c + 256])
            for i, b in enumerate(DEO_BANDS.names): f.set_band_description(i + 1, b)
    times = dict(write_tifs_s=time.perf_counter() - t)
    files = sorted((work / "tifs").glob("*.tif"))
    t = time.perf_counter()
    shard(files[:1000], work / "shards_1k", chip_size=256, progress=False)
    times["shard_1k_files_s"] = time.perf_counter() - t
    replicate(work / "shards_1k", work / "shards_10k", 10)
    replicate(work / "shards_1k", work / "shards_100k", 100)
    replicate(work / "shards_1k", work / "shards_1m", 1000)
    chips = np.stack([whole[:, r:r + 256, c:c + 256] for r, c in windows[:1000]])
    np.save(work / "chips.npy", chips)
    with tarfile.open(work / "chips.tar", "w") as tar:
        for k in range(1000):
            p = work / "one.npy"; np.save(p, chips[k]); tar.add(p, arcname=f"{k:06d}.npy")
    (work / "one.npy").unlink()
    return files, times

def run_child(args: list[str], timeout: int = 900) -> dict:
    r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1"))
    line = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode or not line: raise RuntimeError(f"child {args[:2]} failed ({r.returncode}): {r.stderr[-2000:]}")
    return json.loads(line[-1])

def gpu_rate_estimate() -> dict:
    "Samples/s of one H100/H200 on the deo preset's step, from a FLOP count (see the printed assumptions)."
    params, mfu, peak = 86e6, 0.40, 989e12  # ViT-B/16 weights; 40 % of the H100/H200 SXM dense bf16 peak (989 TFLOP/s)
    fwd = lambda tokens: 2 * params * tokens  # FLOPs of one forward pass; attention adds < 10 % at these lengths
    student = 3 * (2 * fwd(197) + 10 * fwd(37))  # forward + backward on 2 x 224 px (196 + 1 tokens) and 10 x 96 px (36 + 1) crops
    teachers = 2 * fwd(197) + 2 * fwd(197)  # the EMA MS teacher and the frozen ViT-B/16 optical teacher on the 2 global crops
    per_sample = student + teachers
    return dict(gflop_per_sample=per_sample / 1e9, samples_per_s=mfu * peak / per_sample, steps_per_s=mfu * peak / per_sample / 64)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", choices=["startup", "rates"], help=argparse.SUPPRESS)
    ap.add_argument("--data", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--nofile", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--keep", type=Path, help="build the corpora in this folder and keep them (default: a temporary folder, removed)")
    ap.add_argument("--views-items", type=int, default=12, help="chips timed with the DEO views (default: 12)")
    a = ap.parse_args()
    if a.child == "startup": return child_startup(a.data, a.nofile)
    if a.child == "rates": return child_rates(a.work, a.views_items)
    work = a.keep or Path(tempfile.mkdtemp(prefix="bench_shards_"))
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    try:
        if (work / "chips.tar").exists():  # --keep DIR of an earlier run
            files = sorted((work / "tifs").glob("*.tif"))
            print(f"reusing the corpora in {work}")
        else:
            files, times = make_corpora(work)
            print(f"corpora in {work}: 2,000 GeoTIFF chips written in {times['write_tifs_s']:.1f} s; `shard` of 1,000 files "
                  f"{times['shard_1k_files_s']:.1f} s ({1000 / times['shard_1k_files_s']:.0f} chips/s)", flush=True)
        runs = [("shards", "1k", [str(work / "shards_1k")], None), ("shards", "10k", [str(work / "shards_10k")], None),
                ("shards", "100k", [str(work / "shards_100k")], None), ("shards", "1M", [str(work / "shards_1m")], None),
                ("GeoTIFF files", "1k", [str(f) for f in files[:1000]], None), ("GeoTIFF files", "2k", [str(f) for f in files], None),
                ("GeoTIFF files, ulimit -n 1024", "2k", [str(f) for f in files], 1024)]
        print("\n| data | chips | imports s | data + statistics s | Trainer s (incl. data) | first batch s | data RSS MB | RSS after first batch MB | peak RSS MB | open files | result |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, size, data, nofile in runs:
            r = run_child(["--child", "startup", "--data", *data, *(["--nofile", str(nofile)] if nofile else [])])
            if r["ok"]:
                print(f"| {name} | {size} | {r['import_s']:.1f} | {r['data_s']:.2f} | {r['trainer_s']:.1f} | {r['first_batch_s']:.2f} | {r['data_rss_mb']:.0f} | "
                      f"{r['rss_after_batch_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['open_files']} | ok ({r['chips']} chips/epoch) |", flush=True)
            else:
                print(f"| {name} | {size} | {r['import_s']:.1f} | failed after {r['failed_after_s']:.1f} | - | - | - | - | {r['peak_rss_mb']:.0f} | - | {r['error']} |", flush=True)
        rates = run_child(["--child", "rates", "--work", str(work), "--views-items", str(a.views_items)])
        print("\n| one worker (1 thread), same chips | chips/s |\n|---|---|")
        for k, v in rates.items(): print(f"| {k} | {v:.1f} |")
        g = gpu_rate_estimate()
        need = g["samples_per_s"] / rates["shards + DEO views (2x224 + 10x96)"]
        print(f"\nGPU estimate (ViT-B/16 student, 2x224 + 10x96 crops, fwd+bwd; EMA teacher and ViT-B/16 optical teacher forward on the "
              f"global crops; {g['gflop_per_sample']:.0f} GFLOP/sample; 40 % MFU of 989 TFLOP/s bf16, H100/H200 SXM): "
              f"{g['samples_per_s']:.0f} samples/s = {g['steps_per_s']:.1f} steps/s at batch 64")
        print(f"workers to keep one GPU fed with the DEO views at the measured rate: {need:.0f} (CPU cores of this machine; a server core is faster)")
        print(f"\ntotal {time.perf_counter() - t_all:.0f} s")
    finally:
        if not a.keep: shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__": main()
