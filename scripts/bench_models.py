"""Benchmark of DEO's two released architectures on the CPU (not a test): parameter counts, forward times of
`stage_features` at 224 and 256 px for 10- and 3-band input, and the peak memory and time of one Swin-B pretraining
step at batch 2.

usage: python scripts/bench_models.py [--threads N] [--repeats N] [--step-steps N] [--no-step]

* Models: the students `load_deo` builds (`DEO_ARCHS`): Swin-B (patch 4, window 12, 10-band and 3-band stems) and
  ViT-B/8 (patch 8, position embedding laid out for 256 px), random weights; the released training heads
  (hidden 2048; teacher width 768, MS width 256) are counted apart.
* Forward: batch 1, `torch.no_grad()`, one warm-up call, then the median and the minimum of `--repeats` calls (on
  cores shared with other programs the minimum is the steadier number).
* Pretraining step: the `deo_swin_b` preset with batch 2 (2 global crops of 224 px, 10 local crops of 96 px), run in
  a fresh subprocess so its peak resident memory (`ru_maxrss`) is its own. The preset's optical teacher is DINOv3
  ViT-B/16 from the hub, which cannot be had offline: the same architecture with timm's random initialisation
  (`weights="random"`) stands in, which costs the same compute. Reported: the median of `--step-steps` steps after
  one warm-up step, and the peak RSS of the whole process (model, optimiser state, teacher, data).
"""
import argparse, json, resource, statistics, subprocess, sys, tempfile, time
import torch

def count(m): return sum(p.numel() for p in m.parameters())

def models():
    from dualdistill.checkpoint import DEO_ARCHS
    from dualdistill.sensors import DEO_BANDS
    from dualdistill.student import Student
    return {"Swin-B (window 12)": Student(DEO_BANDS, **DEO_ARCHS["swin_b"]).eval(),
            "ViT-B/8": Student(DEO_BANDS, **DEO_ARCHS["vit_base"]).eval()}

def forward_times(repeats):
    rows = []
    for name, st in models().items():
        heads = sum(count(h) for h in (st.ms_head, st.cls_head, st.patch_head_mid, st.patch_head_late))
        stems = count(st.ms_stem) + count(st.rgb_stem)
        body = count(st) - heads - stems - st.mask_token.numel()
        times = {}
        for side in (224, 256):
            for bands in (10, 3):
                x = torch.randn(1, bands, side, side)
                with torch.no_grad():
                    st.stage_features(x)
                    ts = []
                    for _ in range(repeats):
                        t0 = time.perf_counter(); st.stage_features(x); ts.append(time.perf_counter() - t0)
                times[f"{side} px, {bands} bands"] = (statistics.median(ts), min(ts))
        rows.append(dict(model=name, body_M=body / 1e6, stems_M=stems / 1e6, heads_M=heads / 1e6, total_M=count(st) / 1e6, forward_s=times))
        del st
    return rows

def step(threads, n):
    "One process: the deo_swin_b preset at batch 2 on the CPU; prints JSON."
    from dualdistill.train import Trainer, preset
    cfg = preset("deo_swin_b")
    cfg.optim.batch_size = 2
    cfg.teacher.name, cfg.teacher.weights = "vit_base_patch16_dinov3", "random"
    cfg.data.chips_per_epoch, cfg.data.num_workers = 1000, 0
    cfg.run.device, cfg.run.threads, cfg.run.checkpoint_every = "cpu", threads, 10**9
    t = Trainer(cfg, tempfile.mkdtemp())
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    batches = iter(t.loader(0))
    ts = []
    for i in range(1 + n):
        b = next(batches)
        t0 = time.perf_counter(); t.train_step(b["image"]); ts.append(time.perf_counter() - t0)
    print(json.dumps(dict(step_s=statistics.median(ts[1:]), first_step_s=ts[0], steps=ts, rss_after_build_MiB=rss_built,
                          peak_rss_MiB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          crops=[tuple(v.shape) for v in b["image"]], student=t.student.config["backbone"],
                          window=t.student.config["window"], teacher=cfg.teacher.name + " (random init)")))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--step-steps", type=int, default=2)
    ap.add_argument("--no-step", action="store_true")
    ap.add_argument("--_step", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a._step: return step(a.threads, a.step_steps)
    print(f"torch {torch.__version__}, {a.threads} threads, median / min of {a.repeats} calls after one warm-up, batch 1")
    rows = forward_times(a.repeats)
    cols = list(rows[0]["forward_s"])
    print(f"{'model':20s} {'body M':>7s} {'stems M':>8s} {'heads M':>8s} {'total M':>8s} " + " ".join(f"{c:>18s}" for c in cols))
    for r in rows:
        print(f"{r['model']:20s} {r['body_M']:7.2f} {r['stems_M']:8.3f} {r['heads_M']:8.2f} {r['total_M']:8.2f} "
              + " ".join(f"{r['forward_s'][c][0]:8.2f} / {r['forward_s'][c][1]:5.2f}s" for c in cols))
    swin, vit = rows[0]["forward_s"], rows[1]["forward_s"]
    print("ViT-B/8 / Swin-B time ratio (minima): " + ", ".join(f"{c} {vit[c][1] / swin[c][1]:.2f}" for c in cols))
    if a.no_step: return
    r = subprocess.run([sys.executable, __file__, "--_step", "--threads", str(a.threads), "--step-steps", str(a.step_steps)],
                       capture_output=True, text=True)
    if r.returncode: sys.exit(r.stderr[-3000:])
    s = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"Swin-B pretraining step, batch 2, CPU ({s['student']} window {s['window']}, teacher {s['teacher']}, crops {s['crops'][0]} x 2 + "
          f"{s['crops'][-1]} x {len(s['crops']) - 2}): median {s['step_s']:.1f} s/step (steps {', '.join(f'{x:.1f}' for x in s['steps'])} s; "
          f"first is warm-up), peak RSS {s['peak_rss_MiB']:.0f} MiB (after building: {s['rss_after_build_MiB']:.0f} MiB)")

if __name__ == "__main__": main()
