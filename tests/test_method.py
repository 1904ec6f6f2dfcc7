"The method object: what it builds follows from the loss terms; the trainer carries no mode flags; a third teacher plugs in."
import dataclasses, subprocess
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from dualdistill.losses import LOSS_TERMS, LossConfig, LossTerm, cross_view_cosine, loss_term
from dualdistill.method import ConfigError, DualTeacherDistillation, OptimConfig, TEACHERS, preset, register_teacher
from dualdistill.sensors import DEO_BANDS, DEO_STATS
from dualdistill.teachers import split_views
from dualdistill.train import Trainer
from test_train import DUALDISTILL, tiny

def small(loss=None):
    cfg = tiny()
    if loss is not None: cfg.loss = loss
    if cfg.loss.ms_objective == "dino": cfg.views = dataclasses.replace(cfg.views, global_size=64)  # a 4 x 4 patch grid for iBOT's blocks
    return cfg

@pytest.mark.parametrize("loss,teachers,outputs", [
    (LossConfig(), ["ema", "optical"], {"ms_student", "cls_student", "mid_student", "late_student"}),
    (LossConfig(use_optical_teacher=False), ["ema"], {"ms_student"}),
    (LossConfig(use_ms_teacher=False), ["optical"], {"cls_student", "mid_student", "late_student"}),
    (LossConfig(ms_objective="dino", n_prototypes=64, n_patch_prototypes=64), ["prototypes", "optical"],
     {"dino_student", "ibot_student", "koleo_features", "cls_student", "mid_student", "late_student"}),
    (LossConfig(w_mid=0.0), ["ema", "optical"], {"ms_student", "cls_student", "mid_student", "late_student"})])
def test_what_is_built_follows_the_terms(loss, teachers, outputs):
    m = DualTeacherDistillation(small(loss), DEO_BANDS, DEO_STATS)
    assert list(m.teachers) == teachers and m.passes.outputs == outputs
    assert (m.optical_teacher is None) == ("optical" not in teachers) and (m.prototypes is None) == ("prototypes" not in teachers)
    assert (m.masker is not None) == (loss.ms_objective == "dino") and m.student.mask_token.requires_grad == (loss.ms_objective == "dino")

def test_trainer_has_no_mode_flags(tmp_path):
    t = Trainer(small(LossConfig(use_optical_teacher=False)), tmp_path)
    assert not any(hasattr(t, flag) for flag in ("ms", "optical", "dino", "teacher", "ema", "objective"))
    rec = t.fit(progress=False)[-1]
    assert {"compression", "expansion"} <= set(rec) and not {"cls", "mid", "late"} & set(rec)

def test_a_third_teacher_and_term_plug_in(tmp_path):
    class BandMeans(nn.Module):
        produces = ("band_mean_teacher",)
        def __init__(self, n, d):
            super().__init__(); self.register_buffer("proj", torch.randn(n, d, generator=torch.Generator().manual_seed(0)))
        def targets(self, crops): return {"band_mean_teacher": split_views(F.normalize(crops.globals_.mean((-2, -1)) @ self.proj, dim=-1), 2)}
        def follow(self, momentum): pass
        def sections(self): return {}
        def load_sections(self, sections): pass
    register_teacher("band_means", "band_mean_teacher", BandMeans, lambda m: BandMeans(len(m.bands), m.cfg.student.ms_dim))
    loss_term("band_means")(lambda cfg, w: LossTerm("band_means", ("ms_student", "band_mean_teacher"), w, lambda s, t: cross_view_cosine(t, s), maximise=True))
    try:
        cfg = small(LossConfig(extra_terms={"band_means": 0.3}))
        t = Trainer(cfg, tmp_path)
        assert list(t.method.teachers) == ["ema", "optical", "band_means"]
        rec = t.fit(progress=False)[-1]
        total = -(rec["compression"] + rec["expansion"] + 0.5 * rec["cls"] + 0.25 * rec["mid"] + 0.25 * rec["late"] + 0.3 * rec["band_means"])
        assert rec["loss"] == pytest.approx(total, rel=1e-4, abs=1e-5)
    finally:
        TEACHERS.pop("band_means", None); LOSS_TERMS.pop("band_means", None)

def test_an_unproduced_read_is_a_config_error():
    loss_term("orphan")(lambda cfg, w: LossTerm("orphan", ("sar_teacher", "ms_student"), w, lambda t, s: s.mean()))
    try:
        with pytest.raises(ConfigError, match=r"\['sar_teacher'\] unproduced"):
            DualTeacherDistillation(small(LossConfig(extra_terms={"orphan": 1.0})), DEO_BANDS, DEO_STATS)
    finally: LOSS_TERMS.pop("orphan")

@pytest.mark.parametrize("args,fragment", [(["--epochs", "-1"], "expected --epochs to be a positive integer, found -1"),
                                            (["--steps", "0"], "expected --steps to be a positive integer, found 0"),
                                            (["--steps", "-5"], "found -5")])
def test_impossible_lengths_are_refused_before_any_work(tmp_path, args, fragment):
    r = subprocess.run([DUALDISTILL, "pretrain", "--preset", "demo", "--out", str(tmp_path / "run"), *args], capture_output=True, text=True)
    assert r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()  # checked before any work: no folder made
    with pytest.raises(ConfigError): OptimConfig(epochs=0)
