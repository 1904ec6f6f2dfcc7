"""Speed of the benchmark readers (notebook 11): chips per second from each published layout into `Samples`.

Writes a copy of each layout at the published chip sizes (EuroSAT 64 px, BigEarthNet 120 px with 20/60 m band files,
So2Sat 32 px HDF5, OSCD cities of one file per band, Sen1Floods11 512 px chips, a GEO-Bench task, torchgeo's EuroSAT)
with `fake_benchmark`, then times `benchmark_samples` reading it with the model's ten bands. The files are fresh
in the page cache, so the numbers are the readers' own cost (decoding, resampling, label checks), not the disk's.

    .venv/bin/python scripts/bench_readers.py --out out/bench_readers

Prints one line per reader and writes `bench_readers.json` into `--out`.
"""
import argparse, importlib.util, json, time
from pathlib import Path
import torch
from dualdistill.benchmarks import benchmark_samples, fake_benchmark

CASES = {  # --dataset name -> (writer keywords, reader options)
    "eurosat": (dict(per_class=50), {}),
    "bigearthnet": (dict(n=100), {}),
    "so2sat": (dict(n=(2000, 500, 500)), {}),
    "oscd": (dict(cities=(6, 3), size=480, rectified=False), dict(chip=64)),
    "sen1floods11": (dict(n=(6, 2, 2, 1), size=512), dict(chip=64)),
    "geobench:m-eurosat": (dict(n=(150, 50, 50)), {}),
    "torchgeo:EuroSAT": (dict(per_class=50, torchgeo=True), {}),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/bench_readers"), help="folder for the layouts and bench_readers.json")
    p.add_argument("--only", nargs="+", help="names of CASES to run (default: all)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name, (write, read) in CASES.items():
        if args.only and name not in args.only: continue
        if name.startswith("torchgeo:") and importlib.util.find_spec("torchgeo") is None:
            print(f"{name}: skipped (torchgeo not installed)"); continue
        t0 = time.perf_counter()
        root = fake_benchmark(name.split(":")[-1].lower() if name.startswith("torchgeo:") else name, args.out / name.replace(":", "_"), **write)
        t1 = time.perf_counter()
        samples = next(iter(benchmark_samples(name, root, **read).values()))
        t2 = time.perf_counter()
        images = len(set(samples.groups.tolist()))
        mb = samples.images.numel() * 4 / 2**20
        row = dict(dataset=name, chips=len(samples), groups=images, unit=samples.unit, chip_shape=list(samples.images.shape[1:]),
                   write_s=round(t1 - t0, 2), read_s=round(t2 - t1, 3), chips_per_s=round(len(samples) / (t2 - t1), 1),
                   groups_per_s=round(images / (t2 - t1), 1), megabytes=round(mb, 1))
        rows.append(row)
        print(f"{name:>20}: {len(samples):5d} chips {tuple(samples.images.shape[1:])} from {images} {samples.unit}(s) in {t2 - t1:6.2f} s "
              f"= {row['chips_per_s']:8.1f} chips/s ({row['groups_per_s']:.1f} {samples.unit}/s), {mb:.0f} MB in memory", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_readers.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out / 'bench_readers.json'}")


if __name__ == "__main__":
    main()
