"""The encoder comparison of notebook 10 over several seeds, with its spread.

Each seed trains the dual-teacher student and the two single-teacher ablations (demo preset, `--steps` steps),
draws its own spatial split and simulated change on the bundled scene, and evaluates every encoder with frozen
features (kNN and linear probes, segmentation and change probes). Printed: the table of mean ± standard deviation
over seeds, then paired differences (same seed, same split) of the comparisons that matter, each marked `clear`
when its mean exceeds its own standard deviation across seeds and every seed agrees on the sign.

    .venv/bin/python scripts/eval_seeds.py --steps 30 --seeds 0 1 2 --out out/eval_seeds

Finished runs in `--out` are reused, so a second call only evaluates. Writes `eval_seeds.json` and
`eval_seeds.png` (bars with ± one standard deviation) into `--out`.
"""
import argparse, time
from pathlib import Path
import torch
from dualdistill.evaluate import (ablation_encoders, compare, format_differences, format_table, mean_and_spread, paired_differences,
                                  plot_comparison, scene_tasks, summary_table, write_json)
from dualdistill.checkpoint import load_run
from dualdistill.method import preset
from dualdistill.train import train_ablations

PAIRS = [("dual MS", "random student"), ("dual MS", "band statistics"), ("dual MS", "optical teacher"),
         ("dual RGB", "optical teacher"), ("dual MS", "MS-only MS"), ("dual MS", "optical-only MS"),
         ("dual RGB", "MS-only RGB"), ("dual RGB", "optical-only RGB"), ("dual EMA", "dual MS")]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="optimiser steps of each pretraining run (default: 30, as notebook 10)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--out", type=Path, default=Path("out/eval_seeds"), help="folder for the runs, JSON and plot")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = preset("demo")
    cfg.run.threads = args.threads
    per_seed, seconds, records = {}, {}, []
    for seed in args.seeds:
        t0 = time.perf_counter()
        runs = {label: load_run(path) for label, path in train_ablations(args.out / f"seed_{seed}", args.steps, seed, cfg).items()}
        t1 = time.perf_counter()
        results = compare(ablation_encoders(runs, seed), scene_tasks(seed=seed), seed=seed, progress=False)
        rows = summary_table(results)
        per_seed[seed] = {r["encoder"]: r for r in rows}
        records.append(dict(seed=seed, fold=None, summary=rows))
        seconds[seed] = dict(train=t1 - t0, evaluate=time.perf_counter() - t1)
        print(f"seed {seed}: trained (or reused) in {seconds[seed]['train']:.0f} s, evaluated in {seconds[seed]['evaluate']:.0f} s", flush=True)
        print(format_table(rows), flush=True)

    means, spread = mean_and_spread(records)  # the same mean, sample sd and paired differences as `dualdistill evaluate --seeds`
    print(f"\nmean ± standard deviation over seeds {args.seeds} ({args.steps} steps per run)")
    print(format_table(means, spread))
    diffs = paired_differences(records, PAIRS)
    print("\npaired differences a - b (mean ± standard deviation over seeds; clear: |mean| > sd and every seed has the sign of the mean)")
    print(format_differences(diffs))

    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "eval_seeds.json", dict(steps=args.steps, seeds=args.seeds, per_seed=per_seed, mean=means, sd=spread,
                                                  paired_differences=diffs, seconds=seconds))
    fig = plot_comparison(means, spread, title=f"mean ± sd over seeds {args.seeds}, {args.steps}-step demo runs")
    fig.savefig(args.out / "eval_seeds.png", dpi=90)
    print(f"\nwrote {args.out / 'eval_seeds.json'} and {args.out / 'eval_seeds.png'}")


if __name__ == "__main__":
    main()
