"""DEO's released models: their layouts rebuilt here from the authors' code (DEO-FM `DEO/DEO_weights.py`,
`DEO/vision_transformer.py`, `DEO/utils/misc.py`, `DEO/main_dino.py`), saved as their code saves them, loaded with
`load_deo`; their forward against `stage_features`; `import-deo`, `evaluate` and `load_run` on the imported files; a small
Swin student pretrained through `dualdistill pretrain` with 96 px local crops and window 12."""
import argparse, dataclasses, json, math, os, subprocess, sys
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.ops.misc import Permute
import dualdistill
from dualdistill.checkpoint import (CheckpointError, DEO_NORMALISATIONS, export_safetensors, load_deo, load_run, load_student,
                                    read_checkpoint, read_deo, save_student, stats_from_dict)
from dualdistill.cli import main
from dualdistill.sensors import DEO_BANDS, DEO_S2_STATS, DEO_STATS
from dualdistill.student import ArchitectureError, Student
from dualdistill.train import Trainer, checkpoints, preset, save_config

DUALDISTILL = str(Path(sys.executable).parent / "dualdistill")
SWIN = dict(embed_dim=32, depths=[1, 1, 1, 1])  # load_deo settings of the small Swin below (heads 1, 2, 4, 8: C / 32 per stage)
VIT = dict(size="tiny")  # ViT-Ti width (192, 3 heads) with DEO's 12 blocks and patch 8


# --- the authors' layouts, from their code, independent of the package ---

class DINOHead(nn.Module):
    "Their `vision_transformer.DINOHead` without batch norm: `mlp` = Linear, GELU, Linear, GELU, Linear."
    def __init__(self, in_dim, out_dim, hidden=64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

def _stem(c_in, dim):
    "Their Swin stem: Conv2d k = s = 4, Permute to NHWC, LayerNorm eps 1e-5 (`DEO_weights.py`, `MultiCropWrapper._init_swin`)."
    return nn.Sequential(nn.Conv2d(c_in, dim, kernel_size=(4, 4), stride=(4, 4)), Permute([0, 2, 3, 1]), nn.LayerNorm(dim, eps=1e-5))

class TheirSwinStudent(nn.Module):
    "`MultiCropWrapper(backbone=torchvision swin with features[0] deleted, ...)` of `main_dino.py` (to_distill='student')."
    def __init__(self, dim=32, depths=(1, 1, 1, 1), heads=(1, 2, 4, 8), window=12, teacher_dim=48, ms_dim=16, hidden=64):
        super().__init__()
        self.backbone = SwinTransformer([4, 4], dim, list(depths), list(heads), [window, window])
        del self.backbone.features[0]
        self.backbone.fc, self.backbone.head = nn.Identity(), nn.Identity()
        c = self.backbone.features[0][0].norm1.normalized_shape[0]
        self.conv_ms, self.conv_rgb = _stem(10, c), _stem(3, c)
        late, mid = self.backbone.norm.normalized_shape[0], int(self.backbone.features[4][0].norm1.normalized_shape[0])
        self.head_ms, self.cls_head = DINOHead(late, ms_dim, hidden), DINOHead(late, teacher_dim, hidden)
        self.patch_head_mid, self.patch_head_late = DINOHead(mid, teacher_dim, hidden), DINOHead(late, teacher_dim, hidden)

    def deo_forward(self, x):
        "`DEO.forward_swin` of `DEO_weights.py`: stem by channel count, the outputs of features 0, 2, 4, 6 (NHWC)."
        x = self.conv_ms(x) if x.shape[1] == 10 else self.conv_rgb(x)
        out = []
        for i, layer in enumerate(self.backbone.features):
            x = layer(x)
            if i in [0, 2, 4, 6]: out.append(x)
        return out

class PatchEmbed(nn.Module):
    def __init__(self, patch, c_in, dim):
        super().__init__()
        self.proj = nn.Conv2d(c_in, dim, kernel_size=patch, stride=patch)
    def forward(self, x): return self.proj(x).flatten(2).transpose(1, 2)

class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.num_heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, dim * 3, bias=True), nn.Linear(dim, dim)
    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))

class Mlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
    def forward(self, x): return self.fc2(self.act(self.fc1(x)))

class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim)
    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

class TheirViT(nn.Module):
    "DINO-v1 `vit_base`-style ViT (`vision_transformer.py`; default img_size 224) with DEO's two patch-8 embeddings."
    def __init__(self, dim=192, heads=3, depth=12, patch=8):
        super().__init__()
        self.patch_size = patch
        self.patch_embed = PatchEmbed(patch, 3, dim)  # DINO's own, unused by DEO's forward
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (224 // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.patch_embed_ms, self.patch_embed_rgb = PatchEmbed(patch, 10, dim), PatchEmbed(patch, 3, dim)

    def interpolate_pos_encoding(self, x, w, h):  # verbatim logic of DINO-v1
        npatch, N = x.shape[1] - 1, self.pos_embed.shape[1] - 1
        if npatch == N and w == h: return self.pos_embed
        class_pos_embed, patch_pos_embed, dim = self.pos_embed[:, 0], self.pos_embed[:, 1:], x.shape[-1]
        w0, h0 = w // self.patch_size + 0.1, h // self.patch_size + 0.1
        patch_pos_embed = F.interpolate(patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2),
                                        scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)), mode="bicubic")
        assert int(w0) == patch_pos_embed.shape[-2] and int(h0) == patch_pos_embed.shape[-1]
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)

    def deo_forward(self, x):
        "`DEO.prepare_tokens` then `get_intermediate_layers(n=[3, 5, 8, 11])`: raw block outputs, class token first."
        B, nc, w, h = x.shape
        t = self.patch_embed_rgb(x) if nc == 3 else self.patch_embed_ms(x)
        t = torch.cat((self.cls_token.expand(B, -1, -1), t), dim=1)
        t = t + self.interpolate_pos_encoding(t, w, h)
        out = []
        for i, blk in enumerate(self.blocks):
            t = blk(t)
            if i in [3, 5, 8, 11]: out.append(t)
        return out

class TheirViTStudent(nn.Module):
    "Their ViT student wrapper: `backbone` (the ViT, `patch_embed` deleted under --ms_arch) plus the four heads."
    def __init__(self, teacher_dim=48, ms_dim=16, **vit):
        super().__init__()
        self.backbone = TheirViT(**vit)
        d = self.backbone.cls_token.shape[-1]
        self.head_ms, self.cls_head = DINOHead(d, ms_dim), DINOHead(d, teacher_dim)
        self.patch_head_mid, self.patch_head_late = DINOHead(d, teacher_dim), DINOHead(d, teacher_dim)


def released(wrapper, keep_patch_embed=True):
    "The released file's state dict: wrapper keys with `backbone.` removed (`features.*`, `conv_ms.*`, `norm.*`, heads, ...)."
    sd = {k.replace("backbone.", ""): v.clone() for k, v in wrapper.state_dict().items()}
    return sd if keep_patch_embed else {k: v for k, v in sd.items() if not k.startswith("patch_embed.")}

def training_checkpoint(wrapper, prefix="module."):
    "What `main_dino.py` saves: `student` (DDP keys), `teacher`, `optimizer`, `epoch`, `args` (an argparse.Namespace)."
    sd = {prefix + k: v.clone() for k, v in wrapper.state_dict().items() if not k.startswith("backbone.patch_embed.")}
    opt = torch.optim.AdamW(wrapper.parameters(), lr=1e-3)
    return dict(student=sd, teacher={k: v.clone() for k, v in sd.items()}, optimizer=opt.state_dict(), epoch=3,
                args=argparse.Namespace(arch="swin_b", patch_size=8, ms_arch=True, lr=5e-4, global_crops_scale=(0.4, 1.0)),
                dino_loss={})

OURS = {"features.": "backbone.body.features.", "norm.": "backbone.body.norm.", "conv_ms.": "backbone.ms_stem.", "conv_rgb.": "backbone.rgb_stem.",
        "patch_embed_ms.proj.": "backbone.body.patch_embed.proj.", "patch_embed_rgb.proj.": "backbone.rgb_stem.proj.",
        "cls_token": "backbone.body.cls_token", "pos_embed": "backbone.body.pos_embed", "blocks.": "backbone.body.blocks.",
        "head_ms.": "ms_head.", "cls_head.": "cls_head.", "patch_head_mid.": "patch_head_mid.", "patch_head_late.": "patch_head_late."}

def ours(k):
    p = next(p for p in OURS if k.startswith(p))
    return OURS[p] + k[len(p):]

def assert_all_arrived(student, theirs, skip=()):
    own = student.state_dict()
    for k, v in theirs.items():
        if k.startswith(skip): continue
        assert torch.equal(own[ours(k)], v), k
    heads = {ours(k) for k in theirs if not k.startswith(skip)}
    assert set(own) - heads - {ours(k) for k in skip if k in OURS} <= {"mask_token"} | {k for k in own if k.endswith("relative_position_index")}


@pytest.fixture(scope="module")
def swin():
    torch.manual_seed(0)
    return TheirSwinStudent().eval()

@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(1)
    return TheirViTStudent().eval()


# --- the release's layout at full size (meta tensors: no memory, no time) ---

def test_full_size_layouts_have_the_release_key_counts():
    with torch.device("meta"):
        full = TheirSwinStudent(128, (2, 2, 18, 2), (4, 8, 16, 32), 12, teacher_dim=768, ms_dim=256, hidden=2048)
        ours_b = Student(DEO_BANDS, backbone="swin", size="base", window=12, mid_block=2)
    sd = released(full)
    assert len(sd) == 379 and sd["features.0.0.attn.relative_position_bias_table"].shape == (529, 4)
    assert {k.split(".")[0] for k in sd} == {"features", "norm", "conv_ms", "conv_rgb", "head_ms", "cls_head", "patch_head_mid", "patch_head_late"}
    assert {ours(k): tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in ours_b.state_dict().items() if k != "mask_token"}


# --- loading, every tensor accounted for ---

@pytest.mark.parametrize("form", ["released", "training", "compiled", "compiled_ddp"])
def test_swin_files_load_exactly(swin, tmp_path, form):
    path = tmp_path / "DEO_swin_b.pth"
    theirs = released(swin)
    ck = {"released": theirs, "training": training_checkpoint(swin), "compiled": training_checkpoint(swin, "module._orig_mod."),
          "compiled_ddp": training_checkpoint(swin, "_orig_mod.module.")}[form]
    torch.save(ck, path)
    imported = read_deo(path, "swin_b", **SWIN)
    st = imported.student
    assert_all_arrived(st, theirs)
    assert st.bands == DEO_BANDS and st.stats == DEO_STATS and not st.training
    assert st.config["window"] == 12 and st.config["mid_block"] == 2 and st.config["teacher_dim"] == {"cls": 48, "mid": 48, "late": 48}
    assert imported.notes == ["initialised mask_token: not in the file"]
    assert dualdistill.load_deo is load_deo

def test_vit_files_load_exactly(vit, tmp_path):
    torch.save(released(vit), tmp_path / "vit.pth")
    imported = read_deo(tmp_path / "vit.pth", "vit_base", **VIT)
    theirs = released(vit)
    assert_all_arrived(imported.student, theirs, skip=("patch_embed.", "pos_embed"))
    grid = torch.zeros(1, 1 + 32 * 32, 192)  # their forward at 256 px interpolates the 28 x 28 table on every call; ours holds the result
    assert torch.equal(imported.student.state_dict()["backbone.body.pos_embed"], vit.backbone.interpolate_pos_encoding(grid, 256, 256))
    assert any(n.startswith("dropped patch_embed.proj.weight (192, 3, 8, 8)") for n in imported.notes)
    torch.save(training_checkpoint(vit), tmp_path / "train.pth")  # without DINO's own patch_embed, as --ms_arch deletes it
    again = load_deo(tmp_path / "train.pth", "vit_base", normalisation="normalize_s2", **VIT)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), imported.student.state_dict().values()))
    assert again.stats == DEO_S2_STATS and again.config["patch_size"] == 8 and again.config["mid_block"] == 5

def test_mismatches_are_the_package_error_naming_them(swin, tmp_path):
    def fails(state, match, **kw):
        torch.save(state, tmp_path / "bad.pth")
        with pytest.raises(CheckpointError, match=match) as e: load_deo(tmp_path / "bad.pth", kw.pop("arch", "swin_b"), **{**SWIN, **kw})
        assert "\n" not in str(e.value)
    torch.manual_seed(0)
    fails(released(TheirSwinStudent(window=7)), r"expected window 12 \(529-row relative-position tables\) in .*bad.pth, found "
          r"features.0.0.attn.relative_position_bias_table of shape \(169, 1\) \(window 7\): pass window=7")
    no_stem = {k: v for k, v in released(swin).items() if not k.startswith("conv_rgb.")}
    fails(no_stem, r"to hold \['conv_rgb.0.weight', 'conv_rgb.0.bias', 'conv_rgb.2.weight'\] \.\.\., found them missing \(4 of")
    fails({**released(swin), "extra.weight": torch.zeros(3)}, r"found the extra key 'extra.weight' \(3,\)")
    fails(released(swin), r"features.0.0.norm1.weight: expected \(48,\), found \(32,\)", embed_dim=48)
    fails({"student": {"module.backbone.x": 1}}, r"expected a DEO state dict, or a training checkpoint with a 'student' entry")
    fails(released(swin), r"expected arch one of \['swin_b', 'vit_base'\], found 'swin_t'", arch="swin_t")
    torch.save({"student": released(swin), "model": nn.Linear(2, 2)}, tmp_path / "code.pth")  # a pickled module: never unpickled
    with pytest.raises(CheckpointError, match="readable without running code"): load_deo(tmp_path / "code.pth", "swin_b", **SWIN)
    torch.save(released(swin), tmp_path / "ok.pth")
    with pytest.raises(ArchitectureError, match=r"found \['windw'\]"): load_deo(tmp_path / "ok.pth", "swin_b", windw=12, **SWIN)


# --- their forward against stage_features ---

@pytest.mark.parametrize("bands", [10, 3])
def test_swin_stage_features_are_their_forward(swin, tmp_path, bands):
    torch.save(released(swin), tmp_path / "s.pth")
    st = load_deo(tmp_path / "s.pth", "swin_b", **SWIN)
    torch.manual_seed(2)
    for size in (224, 96):  # 96 px: the local-crop size; the last stages are padded to the 12 x 12 window
        x = torch.randn(2, bands, size, size)
        with torch.no_grad(): got, want = st.stage_features(x), swin.deo_forward(x)
        assert [tuple(g.shape) for g in got] == [(2, 32 * 2 ** i, size // 4 // 2 ** i, size // 4 // 2 ** i) for i in range(4)]
        for g, w in zip(got, want): torch.testing.assert_close(g, w.permute(0, 3, 1, 2), rtol=1e-4, atol=1e-4)

@pytest.mark.parametrize("bands", [10, 3])
def test_vit_stage_features_are_their_forward_at_256(vit, tmp_path, bands):
    torch.save(released(vit), tmp_path / "v.pth")
    st = load_deo(tmp_path / "v.pth", "vit_base", **VIT)
    torch.manual_seed(3)
    x = torch.randn(1, bands, 256, 256)
    with torch.no_grad(): got, want = st.stage_features(x), vit.backbone.deo_forward(x)
    assert [tuple(g.shape) for g in got] == [(1, 192, 32, 32)] * 4
    for g, w in zip(got, want): torch.testing.assert_close(g, w[:, 1:].transpose(1, 2).reshape(1, 192, 32, 32), rtol=1e-4, atol=1e-4)


# --- import-deo, evaluate, load_run ---

def test_import_deo_cli_round_trips(swin, tmp_path, capsys):
    torch.save(training_checkpoint(swin), tmp_path / "ck.pth")
    want = load_deo(tmp_path / "ck.pth", "swin_b", **SWIN).state_dict()
    sets = ["--set", "embed_dim=32", "--set", "depths=[1,1,1,1]"]
    for out, norm in (("deo.pt", "normalize_hr"), ("deo.safetensors", "normalize_s2")):
        assert main(["import-deo", str(tmp_path / "ck.pth"), "--arch", "swin_b", "--out", str(tmp_path / out), "--normalisation", norm, *sets]) == 0
        assert f"normalisation {norm}" in capsys.readouterr().out
        ck = read_checkpoint(tmp_path / out)
        assert ck["kind"] == "student" and [b[0] for b in ck["band_set"]["bands"]] == list(DEO_BANDS.names)
        assert stats_from_dict(ck["stats"]) == DEO_NORMALISATIONS[norm]
        assert ck["architecture"]["backbone"] == "swin" and ck["architecture"]["window"] == 12 and ck["architecture"]["depths"] == [1, 1, 1, 1]
        st = load_student(tmp_path / out)
        assert st.bands.names == DEO_BANDS.names and st.stats == DEO_NORMALISATIONS[norm]
        assert st.state_dict().keys() == want.keys() and all(torch.equal(st.state_dict()[k], v) for k, v in want.items())
    assert main(["import-deo", str(tmp_path / "ck.pth"), "--arch", "swin_b", "--out", str(tmp_path / "x.pt")]) == 2  # full Swin-B settings
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: expected DEO's swin_b student in" in err and not (tmp_path / "x.pt").exists()

def test_evaluate_and_load_run_accept_an_imported_file(swin, tmp_path):
    torch.save(released(swin), tmp_path / "s.pth")
    assert main(["import-deo", str(tmp_path / "s.pth"), "--arch", "swin_b", "--out", str(tmp_path / "deo.pt"), "--set", "embed_dim=32",
                 "--set", "depths=[1,1,1,1]"]) == 0
    run = load_run(tmp_path / "deo.pt")
    assert run.stats == DEO_STATS and run.config is None and run.ema is None and run.step == 0 and not run.student.training
    assert main(["evaluate", "--checkpoint", str(tmp_path / "deo.pt"), "--task", "knn", "--out", str(tmp_path / "eval"), "--threads", "1",
                 "--quiet"]) == 0
    report = json.loads((tmp_path / "eval/report.json").read_text())
    assert 0 <= report["results"]["student MS"]["knn"]["top1"] <= 1
    bare = Student(DEO_BANDS, backbone="swin", size="tiny", window=12, head_hidden=32, **SWIN)
    save_student(bare, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match=r"found one of kind .student. without statistics: save it with save_student\(student, path, stats=...\)"):
        load_run(tmp_path / "bare.pt")
    bare.stats = DEO_S2_STATS
    export_safetensors(bare, tmp_path / "bare.safetensors")
    assert load_run(tmp_path / "bare.safetensors").stats == DEO_S2_STATS


# --- a small Swin student pretrains through the command line ---

def test_swin_student_pretrains_with_96px_local_crops(tmp_path):
    cfg = preset("demo_swin")
    assert cfg.student.backbone == "swin" and cfg.student.window == 12
    cfg.data.chip_size, cfg.data.chips_per_epoch = 128, 8
    cfg.views = dataclasses.replace(cfg.views, global_size=128, local_size=96, n_local=1)
    cfg.student.embed_dim, cfg.student.depths, cfg.student.head_hidden = 16, [1, 1, 1, 1], 32
    cfg.teacher.calibration_images = 4
    cfg.optim.batch_size, cfg.optim.steps, cfg.optim.warmup_epochs = 2, 2, 0.5
    cfg.run.log_every, cfg.run.checkpoint_every, cfg.run.threads = 1, 2, 1
    save_config(cfg, tmp_path / "swin.yaml")
    r = subprocess.run([DUALDISTILL, "pretrain", "--config", str(tmp_path / "swin.yaml"), "--out", str(tmp_path / "run"), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    ck = read_checkpoint(checkpoints(tmp_path / "run")[-1])
    assert ck["step"] == 2 and ck["student_config"]["backbone"] == "swin" and ck["student_config"]["window"] == 12
    assert ck["config"]["views"]["local_size"] == 96
    run = load_run(checkpoints(tmp_path / "run")[-1], optical=False)
    with torch.no_grad(): maps = run.student.stage_features(torch.randn(1, 10, 96, 96))
    assert [tuple(m.shape) for m in maps] == [(1, 16, 24, 24), (1, 32, 12, 12), (1, 64, 6, 6), (1, 128, 3, 3)]
    assert all(torch.isfinite(v).all() for v in ck["student"].values())


# --- continued pretraining from an imported file ---

def test_pretraining_continues_from_an_imported_file(swin, tmp_path, capsys):
    torch.save(released(swin), tmp_path / "s.pth")
    assert main(["import-deo", str(tmp_path / "s.pth"), "--arch", "swin_b", "--out", str(tmp_path / "deo.pt"), "--set", "embed_dim=32",
                 "--set", "depths=[1,1,1,1]"]) == 0
    cfg = preset("demo_swin")
    cfg.data.chip_size, cfg.data.chips_per_epoch = 128, 8
    cfg.views = dataclasses.replace(cfg.views, global_size=128, local_size=96, n_local=1)
    cfg.student.embed_dim, cfg.student.depths, cfg.student.head_hidden, cfg.student.ms_dim = 32, [1, 1, 1, 1], 64, 16  # the file's widths
    cfg.teacher.calibration_images, cfg.optim.batch_size, cfg.optim.steps, cfg.run.threads = 2, 2, 1, 1
    cfg.student.init = str(tmp_path / "deo.pt")
    trainer = Trainer(cfg, tmp_path / "run")
    theirs, own = released(swin), trainer.student.state_dict()
    optical = ("cls_head.", "patch_head_mid.", "patch_head_late.")  # shaped for their 48-wide teacher, not EfficientNet-Lite0
    assert all(torch.equal(own[ours(k)], v) for k, v in theirs.items() if not k.startswith(optical))
    assert all(own[ours(k)].shape != v.shape for k, v in theirs.items() if k.startswith(optical) and k.endswith("mlp.4.weight"))
    branch = trainer.student.ms_branch().state_dict()
    assert all(torch.equal(v, branch[k]) for k, v in trainer.method.teachers["ema"].module.state_dict().items())
    assert trainer.start_from(cfg.student.init) == ["cls_head", "patch_head_mid", "patch_head_late"]
    assert trainer.fit(progress=False)[-1]["step"] == 1
    cfg.student.window, cfg.student.init = 7, None  # the command line's --init sets student.init
    save_config(cfg, tmp_path / "w7.yaml")
    assert main(["pretrain", "--config", str(tmp_path / "w7.yaml"), "--init", str(tmp_path / "deo.pt"), "--out", str(tmp_path / "w7"), "--quiet"]) == 2
    assert "checkpoint is for another architecture: window: expected 7, found 12" in capsys.readouterr().err and not (tmp_path / "w7").exists()
