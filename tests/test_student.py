"Behaviour of the two-stem student: shapes, stem choice, heads, attention, checkpoints, band transfer, timm export."
import copy, os, warnings
import pytest
import timm
import torch
from dualdistill.sensors import BandError, DualDistillError, DEO_BANDS, SENTINEL2_L1C, SENTINEL2_L2A
from dualdistill.student import (Student, MSBranch, StemError, ArchitectureError, BandTransfer, BandTransferWarning,
                                 save_student, load_student, load_student_weights, student_checkpoint, export_timm)

torch.set_num_threads(1)

def small_student(bands=DEO_BANDS, **kw):
    "A tiny student with narrow heads, for quick tests."
    torch.manual_seed(kw.pop("seed", 0))
    return Student(bands, **{"size": "tiny", "teacher_dim": 48, "head_hidden": 32, **kw}).eval()

@pytest.fixture(scope="module")
def student():
    return small_student(reg_tokens=4)

WIDTH = {"tiny": 192, "small": 384, "base": 768}

@pytest.mark.parametrize("size", ["tiny", "small"])
@pytest.mark.parametrize("side", [224, 96])
@pytest.mark.parametrize("channels", [10, 3])
def test_shapes_both_stems_two_crop_sizes(size, side, channels):
    s = small_student(size=size)
    with torch.no_grad(): f = s(torch.randn(2, channels, side, side), blocks=(2, 8))
    D, g = WIDTH[size], side // 16
    assert s.embed_dim == D and f.cls.shape == (2, D) and f.patches.shape == (2, D, g, g)
    assert set(f.blocks) == {2, 8} and all(m.shape == (2, D, g, g) for m in f.blocks.values())

def test_shapes_base_one_forward():
    s = small_student(size="base")
    with torch.no_grad(): f = s(torch.randn(1, 10, 64, 64))
    assert f.cls.shape == (1, 768) and f.patches.shape == (1, 768, 4, 4)

def test_optical_and_ms_outputs(student):
    x = torch.randn(2, 10, 96, 128)
    with torch.no_grad(): z, o = student.ms_embedding(x), student.optical(x[:, :3])
    assert z.shape == (2, 256) and torch.allclose(z.norm(dim=1), torch.ones(2), atol=1e-5)
    assert o.cls.shape == (2, 48) and o.mid.shape == o.late.shape == (2, 48, 6, 8)
    with torch.no_grad():
        f = student(x[:, :3], blocks=(8,))
        assert torch.allclose(o.mid, student.patch_head_mid(f.blocks[8].permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
        assert torch.allclose(o.late, student.patch_head_late(f.patches.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))

def test_optical_takes_rgb_bands_by_name():
    s = small_student(SENTINEL2_L2A)
    x = torch.randn(1, 12, 32, 32)
    rgb = x[:, [SENTINEL2_L2A.index(n) for n in ("B04", "B03", "B02")]]
    with torch.no_grad(): assert torch.equal(s.optical(x).cls, s.optical(rgb).cls)

def test_band_count_error(student):
    with pytest.raises(StemError) as e: student(torch.randn(1, 7, 32, 32))
    msg = str(e.value)
    assert isinstance(e.value, BandError) and isinstance(e.value, ValueError)
    assert "C = 10" in msg and "'deo'" in msg and "B8A" in msg and "C = 3" in msg and "(1, 7, 32, 32)" in msg
    with pytest.raises(StemError, match="found shape"): student(torch.randn(7, 32, 32))
    with pytest.raises(StemError, match=r"\(B, 10, H, W\).*found shape \(1, 3, 32, 32\)"): student.ms_embedding(torch.randn(1, 3, 32, 32))
    with pytest.raises(StemError, match="found shape"): student.optical(torch.randn(1, 7, 32, 32))

def test_constructor_errors():
    with pytest.raises(ArchitectureError, match="huge"): Student(size="huge")
    with pytest.raises(ArchitectureError, match="mid_block in 0..11, found 12"): Student(mid_block=12, head_hidden=8)
    with pytest.raises(ArchitectureError, match="3 bands"): Student(DEO_BANDS.select(["B04", "B08", "B11"]))
    with pytest.raises(ArchitectureError, match="0..11, found \\[12\\]"): small_student()(torch.randn(1, 3, 32, 32), blocks=(12,))

def test_heads_init():
    s = Student()  # reference heads: hidden 2048
    assert s.cls_head.mlp[-1].out_features == 768 and s.ms_head.mlp[-1].out_features == 256
    for head in (s.ms_head, s.cls_head, s.patch_head_mid, s.patch_head_late):
        linears = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
        assert len(linears) == 3 and [m.in_features for m in linears] == [192, 2048, 2048]
        for m in linears:
            assert abs(float(m.weight.detach().std()) - 0.02) < 5e-4 and abs(float(m.weight.detach().mean())) < 5e-4
            assert not m.bias.detach().any()
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in head.modules())

def test_ms_branch_contract(student):
    branch = student.ms_branch()
    assert isinstance(branch, MSBranch) and branch.bands is student.bands
    shared = [*student.body.parameters(), *student.ms_head.parameters()]
    assert len(list(branch.parameters())) == len(shared) and all(p is q for p, q in zip(branch.parameters(), shared))
    assert not any(p is q for p in branch.parameters() for q in student.rgb_stem.parameters())
    names = [n for n, _ in branch.named_parameters()]
    assert names == [n for n, _ in student.ms_branch().named_parameters()]
    teacher = copy.deepcopy(branch)
    assert [n for n, _ in teacher.named_parameters()] == names
    assert not any(p is q for p, q in zip(teacher.parameters(), branch.parameters()))
    x = torch.randn(2, 10, 64, 64)
    with torch.no_grad(): assert torch.allclose(teacher(x), student.ms_embedding(x), atol=1e-6)
    branch(x).sum().backward()
    assert student.body.blocks[0].attn.qkv.weight.grad is not None and student.ms_stem.proj.weight.grad is not None
    student.zero_grad(set_to_none=True)

def attention_matrix_from_timm(student, x):
    "Full last-block attention (B, heads, N, N) from timm's unfused path, on a copy of the student."
    s = copy.deepcopy(student)
    s.body.blocks[-1].attn.fused_attn = False
    seen = []
    s.body.blocks[-1].attn.attn_drop.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad(): s(x)
    return seen[0]

def test_last_attention_matches_timm_and_drops_registers(student):
    x = torch.randn(2, 10, 64, 96)
    with torch.no_grad(): a, raw = student.last_attention(x), student.last_attention(x, renormalise=False)
    assert a.shape == raw.shape == (2, 3, 4, 6)
    assert torch.allclose(a.sum((2, 3)), torch.ones(2, 3), atol=1e-5)
    full = attention_matrix_from_timm(student, x)
    assert full.shape == (2, 3, 1 + 4 + 24, 1 + 4 + 24)
    expected = full[:, :, 0, 5:]  # class-token row, class and 4 register columns dropped
    assert torch.allclose(raw.flatten(2), expected, atol=1e-6)
    assert torch.allclose(a.flatten(2), expected / expected.sum(-1, keepdim=True), atol=1e-5)
    assert (raw.sum((2, 3)) < 1 - full[:, :, 0, 1:5].sum(-1) + 1e-5).all()
    assert all(blk.attn.fused_attn for blk in student.body.blocks)

def test_last_attention_rgb_stem(student):
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad(): a = student.last_attention(x)
    expected = attention_matrix_from_timm(student, x)[:, :, 0, 5:]
    assert torch.allclose(a.flatten(2), expected / expected.sum(-1, keepdim=True), atol=1e-5)

def test_checkpoint_round_trip(tmp_path, student):
    path = save_student(student, tmp_path / "s.pt")
    assert os.listdir(tmp_path) == ["s.pt"]
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "dualdistill.checkpoint" and raw["version"] == 2 and raw["kind"] == "student"
    assert raw["band_set"]["bands"][0][:3] == ["B04", "red", 664.6] and raw["student_config"]["reg_tokens"] == 4
    again = load_student(path).eval()
    assert again.bands == student.bands and again.config == student.config
    own = student.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in again.state_dict().items())

def test_save_is_atomic(tmp_path, student, monkeypatch):
    path = save_student(student, tmp_path / "s.pt")
    before = path.read_bytes()
    def fail(obj, f): open(f, "wb").write(b"partial"); raise OSError("disk full")
    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError): save_student(small_student(seed=1), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["s.pt"]

TARGET = SENTINEL2_L1C.select(["B12", "B04", "B03", "B02", "B01", "B08"])

@pytest.mark.parametrize("init", ["zero", "mean", "nearest"])
def test_band_transfer(student, init):
    ckpt = student_checkpoint(student)
    target = small_student(TARGET, reg_tokens=4, seed=3)
    with pytest.warns(BandTransferWarning, match="B01"): report = load_student_weights(target, ckpt, new_band_init=init)
    assert isinstance(report, BandTransfer)
    assert report.kept == ("B12", "B04", "B03", "B02", "B08") and list(report.initialised) == ["B01"]
    assert report.dropped == ("B05", "B06", "B07", "B8A", "B11")
    w_src, w_dst = student.ms_stem.proj.weight.detach(), target.ms_stem.proj.weight.detach()
    for name in report.kept: assert torch.equal(w_dst[:, TARGET.index(name)], w_src[:, DEO_BANDS.index(name)])
    new = w_dst[:, TARGET.index("B01")]
    if init == "zero": assert not new.any()
    if init == "mean": assert torch.allclose(new.double(), w_src.double().mean(1), atol=1e-7)
    if init == "nearest": assert torch.equal(new, w_src[:, DEO_BANDS.index("B02")])  # 442.7 nm -> B02 at 492.4 nm
    src = student.state_dict()
    for k, v in target.state_dict().items():
        if k != "backbone.body.patch_embed.proj.weight": assert torch.equal(v, src[k]), k

def test_band_transfer_same_bands_is_silent(student):
    target = small_student(reg_tokens=4, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = load_student_weights(target, student_checkpoint(student))
    assert report.kept == DEO_BANDS.names and report.initialised == {} and report.dropped == ()
    assert torch.equal(target.ms_stem.proj.weight, student.ms_stem.proj.weight)

def test_zero_init_preserves_features(student):
    with pytest.warns(BandTransferWarning):
        target = load_student(student_checkpoint(student), bands=SENTINEL2_L1C.select(["B04", "B03", "B01", "B02", "B08", "B11"]))
    x = torch.randn(2, 6, 32, 32)
    idx = [DEO_BANDS.index(n) for n in ("B04", "B03", "B02", "B08", "B11")]
    full = torch.zeros(2, 10, 32, 32)
    full[:, idx] = x[:, [0, 1, 3, 4, 5]]
    with torch.no_grad(): assert torch.allclose(target.ms_embedding(x), student.ms_embedding(full), atol=1e-5)

def test_nearest_needs_wavelengths(student):
    from dualdistill.sensors import Band, BandSet
    bands = BandSet("odd", (Band("X1", "nir", None, None, None), *DEO_BANDS.bands[:3]), ("B04", "B03", "B02"))
    with pytest.raises(BandError, match="wavelength"): load_student_weights(small_student(bands, reg_tokens=4), student_checkpoint(student), "nearest")
    with pytest.raises(DualDistillError, match="'zero', 'mean' or 'nearest'"): load_student_weights(student, student_checkpoint(student), "random")

@pytest.mark.parametrize("kw,fragment", [({"size": "small"}, "embed_dim: expected 384, found 192"),
                                         ({"patch_size": 8}, "patch_size: expected 8, found 16"),
                                         ({"reg_tokens": 0}, "reg_tokens: expected 0, found 4")])
def test_wrong_architecture(student, kw, fragment):
    with pytest.raises(ArchitectureError, match=fragment): load_student_weights(small_student(**{"reg_tokens": 4, **kw}), student_checkpoint(student))

def test_not_a_checkpoint(tmp_path, student):
    torch.save({"weight": torch.ones(2)}, tmp_path / "other.pt")
    from dualdistill.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="expected a dualdistill.checkpoint checkpoint .*found format None"): load_student(tmp_path / "other.pt")

@pytest.mark.parametrize("stem,channels", [("rgb", 3), ("ms", 10)])
@pytest.mark.parametrize("side", [224, 80])
def test_export_parity(student, stem, channels, side):
    e = export_timm(student, stem)
    plain = timm.create_model(e.model_name, **e.kwargs)  # a plain timm ViT, nothing from dualdistill
    plain.load_state_dict(e.state_dict)
    plain.eval()
    assert plain.patch_embed.proj.in_channels == channels and len(e.bands) == channels
    x = torch.randn(2, channels, side, side)
    with torch.no_grad():
        f = student(x, blocks=(8,))
        tokens, (mid,) = plain.forward_intermediates(x, indices=[8], norm=True, output_fmt="NCHW")
    assert (tokens[:, 0] - f.cls).abs().max() < 1e-5
    assert (tokens[:, 5:] - f.patches.flatten(2).transpose(1, 2)).abs().max() < 1e-5
    assert (mid - f.blocks[8]).abs().max() < 1e-5

def test_export_patch8_no_registers():
    s = small_student(patch_size=8, stem_norm=False)
    e = export_timm(s, "ms")
    plain = timm.create_model(e.model_name, **e.kwargs)
    plain.load_state_dict(e.state_dict)
    x = torch.randn(1, 10, 40, 40)
    with torch.no_grad(): assert (plain.eval().forward_features(x)[:, 0] - s(x).cls).abs().max() < 1e-5
    with pytest.raises(StemError, match="'rgb' or 'ms'"): export_timm(s, "nir")

def test_forward_many_matches_separate_passes_and_per_output_widths():
    torch.manual_seed(0)
    st = Student(DEO_BANDS, "tiny", teacher_dim=dict(cls=320, mid=112, late=320), head_hidden=32).eval()
    ms, rgb = torch.randn(2, 10, 64, 64), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = st.forward_many([ms, rgb], blocks=(8,))
        one, other = st(ms, blocks=(8,)), st(rgb, blocks=(8,))
        out = st.optical(rgb)
    assert torch.allclose(a.cls, one.cls, atol=1e-5) and torch.allclose(b.patches, other.patches, atol=1e-5)
    assert torch.allclose(b.blocks[8], other.blocks[8], atol=1e-5)
    assert out.cls.shape == (2, 320) and out.mid.shape == (2, 112, 4, 4) and out.late.shape == (2, 320, 4, 4)
    with pytest.raises(StemError, match="one crop size"): st.forward_many([ms, torch.randn(2, 3, 32, 32)])

def _cls_and_grads(st, xs, patches, seed=0):
    "Class tokens, patch maps and body gradients of one `forward_many` (loss: sum of squared class tokens)."
    st.zero_grad(); torch.manual_seed(seed)
    feats = st.forward_many(xs, patches=patches)
    sum(f.cls.square().sum() for f in feats).backward()
    return feats, {k: p.grad.clone() for k, p in st.body.named_parameters()}

def test_class_token_only_last_block_is_exact():
    st = small_student(reg_tokens=4).double()
    xs = [torch.randn(2, 3, 64, 64, dtype=torch.float64), torch.randn(3, 10, 64, 64, dtype=torch.float64),
          torch.randn(1, 3, 64, 64, dtype=torch.float64)]
    (full, g_full), (lean, g_lean) = _cls_and_grads(st, xs, None), _cls_and_grads(st, xs, [False, True, False])
    assert [f.patches is None for f in lean] == [True, False, True]
    assert torch.allclose(lean[1].patches, full[1].patches, rtol=0, atol=1e-12)
    assert all(torch.allclose(a.cls, b.cls, rtol=0, atol=1e-12) for a, b in zip(full, lean))
    assert all(torch.allclose(g_full[k], g_lean[k], rtol=1e-9, atol=1e-12) for k in g_full)

def test_class_token_only_last_block_keeps_stochastic_depth():
    st = small_student(drop_path_rate=0.5).double().train()
    x = [torch.randn(4, 10, 64, 64, dtype=torch.float64)]
    (full, g_full), (lean, g_lean) = _cls_and_grads(st, x, None, seed=3), _cls_and_grads(st, x, [False], seed=3)
    assert torch.allclose(full[0].cls, lean[0].cls, rtol=0, atol=1e-12)
    assert all(torch.allclose(g_full[k], g_lean[k], rtol=1e-9, atol=1e-12) for k in g_full)
    (other, _) = _cls_and_grads(st, x, [False], seed=4)
    assert not torch.allclose(other[0].cls, lean[0].cls)  # the rate is high enough for the seed to matter

def test_patches_flags():
    st = small_student()
    ms = torch.randn(2, 10, 64, 64)
    with torch.no_grad():
        f = st.forward_many([ms], blocks=(11,), patches=[False])[0]  # asking for the last block's map keeps it
        assert f.patches is not None and f.blocks[11] is f.patches
        z = st.ms_branch()(ms)
        assert torch.allclose(z, st.ms_head(st(ms).cls), atol=1e-6)
    with pytest.raises(ArchitectureError, match=r"one `patches` flag per input \(1\), found 2"):
        st.forward_many([ms], patches=[True, False])
