"""Benchmark of the training step (not a test): per-phase time, images/s, peak memory, and the ratio of the full step
to the models' own compute (the student's passes forward+backward, plus both teachers' forwards).

usage: python scripts/bench_train.py [demo|vits|deo] [--steps N] [--warmup N] [--device cpu|cuda] [--workers N]
  demo: the `demo` preset; vits: ViT-S/16 student, DINOv3 ViT-B/16 teacher (random weights), batch 8, 2x224 + 10x96;
  deo: the published recipe with a random-weight teacher (for GPUs).
"""
import argparse, dataclasses, json, resource, tempfile, time
import torch
from dualdistill.train import PhaseTimer, Trainer, preset
from dualdistill.teachers import Crops

def config(name, device, workers=None):
    if name == "demo": cfg = preset("demo")
    else:
        cfg = preset("deo")
        cfg.teacher.name, cfg.teacher.weights = "vit_base_patch16_dinov3", "random"
        if name == "vits": cfg.student.size, cfg.optim.batch_size = "small", 8
    cfg.data.chips_per_epoch = 10_000
    cfg.data.num_workers = workers if workers is not None else 0 if device == "cpu" else 8
    cfg.run.device, cfg.run.threads, cfg.run.checkpoint_every = device, 2 if device == "cpu" else None, 10**9
    return cfg

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", default="demo", choices=["demo", "vits", "deo"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 0 on the CPU, so data time is seen)")
    a = ap.parse_args()
    cfg = config(a.config, a.device, a.workers)
    t = Trainer(cfg, tempfile.mkdtemp())
    dev = t.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    batches = iter(t.loader(0))
    step_s = []
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            t.phases = PhaseTimer(dev)
            if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)
        with t.phases("data"): b = next(batches)
        sync(); t0 = time.perf_counter()
        t.train_step(b["image"])
        sync(); step_s.append(time.perf_counter() - t0)
    steps = step_s[a.warmup:]
    # the models' own compute on the same batch shapes: student passes forward+backward, teachers forward
    views = b["image"]
    glob, loc = torch.cat(views[:2]).to(dev), torch.cat(views[2:]).to(dev)
    model_s = []
    for _ in range(a.steps):
        sync(); t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=t.amp):
            out = t.method.runner(glob, loc)
            with torch.no_grad():
                for teacher in t.method.teachers.values(): teacher.targets(Crops(glob, loc, 2, len(views)))
        sum(v.float().mean() for v in out.values()).backward()
        sync(); model_s.append(time.perf_counter() - t0)
        del out
        t.optimizer.zero_grad(set_to_none=True)
    B = cfg.optim.batch_size
    step, model = sum(steps) / len(steps), sum(model_s) / len(model_s)
    phases = {k: v / a.steps for k, v in t.phases.seconds.items()}
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    report = dict(config=a.config, device=str(dev), batch=B, workers=cfg.data.num_workers, crops=f"2x{cfg.views.global_size} + {cfg.views.n_local}x{cfg.views.local_size}",
                  step_s=step, images_per_s=B / step, models_own_s=model, step_over_models=step / model,
                  data_fraction=phases["data"] / (step + phases["data"]), wall_per_step_s=step + phases["data"], peak_memory_gib=peak,
                  peak_memory_kind="torch.cuda.max_memory_allocated" if dev.type == "cuda" else "process max RSS",
                  phases_s=phases)
    print(json.dumps(report, indent=1))

if __name__ == "__main__":
    main()
