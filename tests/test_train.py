"""The training loop: config files, schedules, exact resume, SIGKILL, non-finite loss, two processes, the CLI."""
import dataclasses, json, math, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from dualdistill.train import (CheckpointError, ConfigError, NonFiniteLossError, OptimConfig, Schedules, Trainer, checkpoints,
                               clip_per_parameter, config_to_dict, cosine, load_config, param_groups, preset, read_checkpoint,
                               read_metrics, save_config)

ROOT = Path(__file__).resolve().parents[1]
DUALDISTILL = str(Path(sys.executable).parent / "dualdistill")  # the console script installed beside this interpreter

def tiny(steps=6, **run):
    "A config that trains in seconds: 2-block ViT-Tiny, 32/16 px crops, the offline teacher."
    cfg = preset("demo")
    cfg.data.chip_size, cfg.data.chips_per_epoch = 48, 16
    cfg.views = dataclasses.replace(cfg.views, global_size=32, local_size=16, n_local=2)
    cfg.student.depth, cfg.student.mid_block, cfg.student.head_hidden = 2, 0, 32
    cfg.teacher.calibration_images = 8
    cfg.optim.batch_size, cfg.optim.steps, cfg.optim.warmup_epochs = 4, steps, 0.5
    cfg.run.log_every, cfg.run.checkpoint_every, cfg.run.threads = 1, 2, 1
    for k, v in run.items(): setattr(cfg.run, k, v)
    return cfg

def ema_of(trainer):
    "The EMA copy of the student's MS branch, whichever MS teacher the run has."
    teachers = trainer.method.teachers
    return teachers["ema"] if "ema" in teachers else teachers["prototypes"].ema

def weights(trainer):
    return {**{f"s.{k}": v for k, v in trainer.student.state_dict().items()}, **{f"t.{k}": v for k, v in ema_of(trainer).state_dict().items()}}

def test_config_yaml_round_trip_and_errors(tmp_path):
    for name in ("deo", "demo"):
        cfg = preset(name)
        save_config(cfg, tmp_path / f"{name}.yaml")
        assert load_config(tmp_path / f"{name}.yaml") == cfg
    deo = config_to_dict(preset("deo"))
    assert deo["optim"]["batch_size"] == 64 and deo["optim"]["epochs"] == 100 and deo["views"]["n_local"] == 10
    assert deo["teacher"]["name"] == "vit_base_patch16_dinov3.lvd1689m" and deo["loss"]["w_mid"] == 0.25
    (tmp_path / "bad.yaml").write_text("optim:\n  batch_sise: 8\n")
    with pytest.raises(ConfigError, match=r"unknown keys \['batch_sise'\] in .*optim: expected some of \['batch_size'"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "type.yaml").write_text("optim:\n  batch_size: eight\n")
    with pytest.raises(ConfigError, match="expected .*optim.batch_size to be int, found 'eight'"): load_config(tmp_path / "type.yaml")
    (tmp_path / "loss.yaml").write_text("loss:\n  ms_objective: simclr\n")
    with pytest.raises(ConfigError, match="ms_objective"): load_config(tmp_path / "loss.yaml")
    with pytest.raises(ConfigError, match="unknown preset 'big'"): preset("big")

def test_schedules_against_formulas():
    o = OptimConfig(base_lr=5e-4, min_lr=1e-6, warmup_epochs=10, weight_decay=0.04, weight_decay_end=0.4, momentum=0.996,
                    momentum_end=1.0, teacher_temp=0.04, teacher_temp_end=0.07, teacher_temp_warmup_epochs=30)
    s = Schedules(total_steps=10000, steps_per_epoch=100, lr=5e-4 * 1024 / 256, optim=o)
    peak = 2e-3
    assert s(500)["lr"] == pytest.approx(peak * 500 / 1000)
    t = (5500 - 1000) / 9000
    assert s(5500)["lr"] == pytest.approx(1e-6 + (peak - 1e-6) * 0.5 * (1 + math.cos(math.pi * t)))
    assert s(10000)["lr"] == pytest.approx(1e-6) and s(2500)["weight_decay"] == pytest.approx(0.4 - 0.36 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert s(10000)["momentum"] == pytest.approx(1.0) and s(1500)["teacher_temp"] == pytest.approx(0.055) and s(9000)["teacher_temp"] == 0.07
    assert cosine(3, 10, 1.0, 0.0, warmup=4) == 0.75

def test_param_groups_and_clipping():
    from dualdistill.student import Student
    st = Student(size="tiny", depth=1, mid_block=0, head_hidden=8, teacher_dim=8)
    decay, no_decay = param_groups(st)
    names = {id(p): n for n, p in st.named_parameters()}
    assert all(p.ndim > 1 for p in decay["params"]) and no_decay["weight_decay"] == 0
    assert {"backbone.body.cls_token", "backbone.body.pos_embed"} <= {names[id(p)] for p in no_decay["params"]}
    assert all(names[id(p)].endswith("bias") or p.ndim <= 1 or "token" in names[id(p)] or "pos_embed" in names[id(p)] for p in no_decay["params"])
    p, q = torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(2))
    p.grad, q.grad = torch.tensor([3.0, 4.0, 0.0, 0.0]), torch.tensor([0.1, 0.0])
    clip_per_parameter([p, q], 1.0)
    assert torch.allclose(p.grad, torch.tensor([0.6, 0.8, 0, 0]), atol=1e-5) and torch.equal(q.grad, torch.tensor([0.1, 0.0]))

def dino(cfg):
    "The DINO-family objective on a config from `tiny`: 4 x 4 patch grids so block masks fit."
    cfg.loss = dataclasses.replace(cfg.loss, ms_objective="dino", n_prototypes=64, n_patch_prototypes=32, mask_probability=0.75)
    cfg.student.patch_size = 8
    return cfg

@pytest.mark.parametrize("objective", ["coding_rate", "dino"])
def test_resume_is_bit_identical(tmp_path, objective):
    make = tiny if objective == "coding_rate" else lambda: dino(tiny())
    full = Trainer(make(), tmp_path / "full")
    full.fit(progress=False)
    part = Trainer(make(), tmp_path / "part")
    part.fit(until=3, progress=False)  # stops after step 3, between checkpoints 2 and 4
    assert [p.name for p in checkpoints(tmp_path / "part")] == ["checkpoint_00000002.pt", "checkpoint_00000003.pt"]
    again = Trainer(make(), tmp_path / "part", resume=True)
    assert again.step == 3
    again.fit(progress=False)
    a, b = weights(full), weights(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if objective == "dino":
        protos = [t.method.teachers["prototypes"].ema_prototypes for t in (full, again)]
        assert all(torch.equal(x, y) for x, y in zip(protos[0].state_dict().values(), protos[1].state_dict().values()))
        assert torch.equal(full.method.objective.dino.fn.teacher.center, again.method.objective.dino.fn.teacher.center)
    assert [r["loss"] for r in read_metrics(tmp_path / "full")] == [r["loss"] for r in read_metrics(tmp_path / "part")]
    for name in ("loss_curve.png", "summary.txt", "config.yaml", "metrics.jsonl"): assert (tmp_path / "full" / name).exists()
    assert len(checkpoints(tmp_path / "full")) == 3  # keep_last

def test_resume_refuses_another_run(tmp_path):
    Trainer(tiny(steps=2), tmp_path).fit(progress=False)
    other = tiny(steps=2); other.student.depth = 3
    with pytest.raises(CheckpointError, match=r"differences in \['student'\]"): Trainer(other, tmp_path, resume=True)
    (tmp_path / "checkpoint_00000009.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="expected a readable dualdistill checkpoint"): read_checkpoint(tmp_path / "checkpoint_00000009.pt")

def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    t = Trainer(tiny(steps=6), tmp_path)
    real = t.method.objective.forward
    def poisoned(**kw):
        out = real(**kw)
        if t.step == 3: out["expansion"], out["loss"] = float("nan"), out["loss"] * float("nan")
        return out
    monkeypatch.setattr(t.method.objective, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 3: term\(s\) \['expansion'\]"): t.fit(progress=False)
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint_00000002.pt"]
    assert read_checkpoint(checkpoints(tmp_path)[-1])["step"] == 2

def _cli(*args, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([DUALDISTILL, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)

def test_cli_sigkill_then_resume_matches_uninterrupted(tmp_path):
    cfg = tiny(steps=8)
    save_config(cfg, tmp_path / "tiny.yaml")
    ref = _cli("pretrain", "--config", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "ref"), "--quiet")
    killed = _cli("pretrain", "--config", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "run"), "--quiet")
    deadline = time.time() + 240
    while not checkpoints(tmp_path / "run") and time.time() < deadline and killed.poll() is None: time.sleep(0.05)
    killed.send_signal(signal.SIGKILL); killed.wait()
    assert killed.returncode == -signal.SIGKILL and checkpoints(tmp_path / "run")
    assert read_checkpoint(checkpoints(tmp_path / "run")[-1])["step"] < 8  # the latest checkpoint is readable
    resumed = _cli("pretrain", "--out", str(tmp_path / "run"), "--resume", "--quiet")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert ref.wait(timeout=300) == 0
    a, b = read_checkpoint(checkpoints(tmp_path / "ref")[-1]), read_checkpoint(checkpoints(tmp_path / "run")[-1])
    assert a["step"] == b["step"] == 8
    assert all(torch.equal(a["student"][k], b["student"][k]) for k in a["student"]) and all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    assert "steps: 8" in out and (tmp_path / "run/loss_curve.png").stat().st_size > 1000

def test_cli_errors_are_one_line(tmp_path):
    r = subprocess.run([DUALDISTILL, "pretrain", "--out", str(tmp_path), "--resume"], capture_output=True, text=True)
    assert r.returncode == 2 and "error: expected a run to resume in" in r.stderr and "Traceback" not in r.stderr

def test_new_run_refuses_a_used_folder(tmp_path):
    Trainer(tiny(steps=2), tmp_path).fit(progress=False)
    with pytest.raises(CheckpointError, match="expected a new run folder, found checkpoints"): Trainer(tiny(steps=2), tmp_path)

def test_dino_family_trains_with_masked_patches(tmp_path):
    t = Trainer(dino(tiny(steps=4)), tmp_path)
    recs = t.fit(progress=False)
    assert {"dino", "ibot", "koleo", "cls", "mid", "late"} <= set(recs[-1]) and "compression" not in recs[-1]
    assert all(math.isfinite(r[k]) for r in recs for k in ("dino", "ibot", "koleo"))
    assert t.student.mask_token.requires_grad and t.student.mask_token.abs().sum() > 0  # the mask token learns
    assert not Trainer(tiny(steps=1), tmp_path / "cr").student.mask_token.requires_grad
    m = t.method.patch_masks(400, step=0)
    assert m.shape == (400, 4, 4) and 0.6 < m.flatten(1).any(1).float().mean() < 0.9  # mask_probability 0.75
    assert m.flatten(1).sum(1).max() <= 8  # at most half the 16 patches

def test_training_stats_for_bands_deo_lacks(scene):
    from dualdistill.sensors import DEO_STATS
    from dualdistill.train import training_stats
    st = training_stats([scene], ["B04", "B01", "B08"])
    x = scene.overview(4, ["B01"])[0].astype("float64")
    x = x[x != 0]
    assert st.mean[1] == pytest.approx(x.mean()) and st.std[1] == pytest.approx(x.std())
    assert (st.mean[0], st.std[2]) == (DEO_STATS.mean[0], DEO_STATS.std[6]) and st.rgb_max_scaled

def test_resume_refuses_other_settings(tmp_path):
    r = subprocess.run([DUALDISTILL, "pretrain", "--out", str(tmp_path), "--resume", "--steps", "9"], capture_output=True, text=True)
    assert r.returncode == 2 and "expected --resume to continue with the run's saved config, found ['--steps']" in r.stderr
