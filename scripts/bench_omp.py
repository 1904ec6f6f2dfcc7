"""Benchmark (not a test): the demo's CPU training step rate with OpenMP threads that spin while they wait (torch's default,
and OMP_WAIT_POLICY=ACTIVE) against threads that sleep (OMP_WAIT_POLICY=PASSIVE, the package's default), on a quiet machine
and on one loaded with busy-loop processes, all in one run, with the losses compared bit for bit.

usage: python scripts/bench_omp.py [--steps N] [--warmup N] [--load N] [--policies P ...]
  Each measurement is a fresh process (the policy is read once, when torch loads): the `demo` preset, 2 threads, its
  first N steps timed after `--warmup` steps. "default" imports torch before dualdistill, with OMP_WAIT_POLICY unset, so the
  package's own default cannot apply; the loaded case runs `--load` processes of `while True: pass` beside it.
"""
import argparse, json, os, statistics, subprocess, sys, time

def child(policy: str, steps: int, warmup: int):
    "One measurement: step times and losses of the demo preset, printed as JSON."
    if policy == "default": import torch  # before dualdistill: OMP_WAIT_POLICY stays unset when libgomp reads it
    import tempfile
    from dualdistill.train import Trainer, preset
    cfg = preset("demo")
    cfg.teacher.calibration_images = 16  # setup only; the step is the demo's
    cfg.run.checkpoint_every = 10**9
    t = Trainer(cfg, tempfile.mkdtemp())
    batches = iter(t.loader(0))
    times, losses = [], []
    for i in range(warmup + steps):
        b = next(batches)
        t0 = time.perf_counter()
        m = t.train_step(b["image"])
        times.append(time.perf_counter() - t0); losses.append(m["loss"])
    print(json.dumps(dict(policy=os.environ.get("OMP_WAIT_POLICY", "unset"), times=times[warmup:], losses=losses,
                          images=b["image"][0].shape[0])))

def measure(policy: str, steps: int, warmup: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "default": env["OMP_WAIT_POLICY"] = policy
    r = subprocess.run([sys.executable, __file__, "--child", policy, "--steps", str(steps), "--warmup", str(warmup)],
                       env=env, capture_output=True, text=True)
    if r.returncode: sys.exit(f"{policy}: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--policies", nargs="+", default=["default", "ACTIVE", "PASSIVE"], help="PASSIVE must be one (the reference)")
    ap.add_argument("--load", type=int, default=2, help="busy-loop processes of the loaded case")
    ap.add_argument("--child")
    a = ap.parse_args()
    if a.child: return child(a.child, a.steps, a.warmup)
    policies = a.policies
    rows, t0, before = {}, time.time(), {}
    for load in ("quiet", "loaded"):
        before[load] = os.getloadavg()[0]
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.load if load == "loaded" else 0)]
        try:
            for p in policies: rows[load, p] = measure(p, a.steps, a.warmup)
        finally:
            for h in hogs: h.kill(); h.wait()
    print(f"demo preset, 2 threads, {a.steps} timed steps after {a.warmup}; loaded = {a.load} busy-loop processes; "
          f"{os.cpu_count()} CPUs; 1-min load average before each case: quiet {before['quiet']:.2f}, loaded {before['loaded']:.2f} "
          f"(before its busy loops); {time.time() - t0:.0f} s in all")
    print(f"{'OMP_WAIT_POLICY':16s} {'quiet s/step':>13s} {'loaded s/step':>14s} {'loaded/quiet':>13s} {'img/s quiet':>12s} {'img/s loaded':>13s} {'vs PASSIVE (loaded)':>20s}")
    med = {k: statistics.median(v["times"]) for k, v in rows.items()}
    for p in policies:
        q, l = med["quiet", p], med["loaded", p]
        img = rows["quiet", p]["images"]
        print(f"{p:16s} {q:13.3f} {l:14.3f} {l / q:13.2f} {img / q:12.1f} {img / l:13.1f} {l / med['loaded', 'PASSIVE']:20.2f}")
    ref = rows["quiet", "PASSIVE"]["losses"]
    same = all(r["losses"] == ref for r in rows.values())
    print(f"losses bit-identical across all {len(rows)} runs: {same}")
    if not same: sys.exit(1)

if __name__ == "__main__": main()
