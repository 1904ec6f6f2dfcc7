"""The encoder comparison of notebook 07 over several seeds, with its spread.

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
import numpy as np
import torch
from dualdistill.evaluate import (SUMMARY, ablation_encoders, compare, format_table, plot_comparison, scene_tasks, summary_table,
                                  train_ablations, write_json)
from dualdistill.train import load_run, preset

PAIRS = [("dual MS", "random student"), ("dual MS", "band statistics"), ("dual MS", "optical teacher"),
         ("dual RGB", "optical teacher"), ("dual MS", "MS-only MS"), ("dual MS", "optical-only MS"),
         ("dual RGB", "MS-only RGB"), ("dual RGB", "optical-only RGB"), ("dual EMA", "dual MS")]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="optimiser steps of each pretraining run (default: 30, as notebook 07)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--out", type=Path, default=Path("out/eval_seeds"), help="folder for the runs, JSON and plot")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = preset("demo")
    cfg.run.threads = args.threads
    per_seed, seconds = {}, {}
    for seed in args.seeds:
        t0 = time.perf_counter()
        runs = {label: load_run(path) for label, path in train_ablations(args.out / f"seed_{seed}", args.steps, seed, cfg).items()}
        t1 = time.perf_counter()
        results = compare(ablation_encoders(runs, seed), scene_tasks(seed=seed), seed=seed, progress=False)
        per_seed[seed] = {r["encoder"]: r for r in summary_table(results)}
        seconds[seed] = dict(train=t1 - t0, evaluate=time.perf_counter() - t1)
        print(f"seed {seed}: trained (or reused) in {seconds[seed]['train']:.0f} s, evaluated in {seconds[seed]['evaluate']:.0f} s", flush=True)
        print(format_table(list(per_seed[seed].values())), flush=True)

    names = list(per_seed[args.seeds[0]])
    cols = [c for c in SUMMARY if c in per_seed[args.seeds[0]][names[0]]]
    values = {n: {c: np.array([per_seed[s][n][c] for s in args.seeds], float) for c in cols} for n in names}
    means = [dict(encoder=n, **{c: float(np.nanmean(values[n][c])) for c in cols}) for n in names]
    spread = [dict(encoder=n, **{c: float(np.nanstd(values[n][c], ddof=1)) for c in cols}) for n in names]
    print(f"\nmean ± standard deviation over seeds {args.seeds} ({args.steps} steps per run)")
    print(format_table(means, spread))

    print("\npaired differences a - b (mean ± standard deviation over seeds; clear: |mean| > sd and every seed has the sign of the mean)")
    diffs = []
    for a, b in PAIRS:
        row = dict(a=a, b=b)
        for c in cols:
            d = values[a][c] - values[b][c]
            m, sd = float(np.mean(d)), float(np.std(d, ddof=1))
            row[c] = dict(mean=m, sd=sd, per_seed=d.tolist(), clear=bool(abs(m) > sd and np.all(np.sign(d) == np.sign(m)) and m != 0))
        diffs.append(row)
        print(f"{a:>17} - {b:<17} " + "  ".join(f"{c}: {row[c]['mean']:+.3f} ± {row[c]['sd']:.3f}{' clear' if row[c]['clear'] else ''}" for c in cols))

    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "eval_seeds.json", dict(steps=args.steps, seeds=args.seeds, per_seed=per_seed, mean=means, sd=spread,
                                                  paired_differences=diffs, seconds=seconds))
    fig = plot_comparison(means, spread, title=f"mean ± sd over seeds {args.seeds}, {args.steps}-step demo runs")
    fig.savefig(args.out / "eval_seeds.png", dpi=90)
    print(f"\nwrote {args.out / 'eval_seeds.json'} and {args.out / 'eval_seeds.png'}")


if __name__ == "__main__":
    main()
