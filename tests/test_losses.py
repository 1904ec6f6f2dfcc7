"""Losses against independent float64 computations (numpy loops) and closed forms."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dualdistill.losses import (CodingRateLoss, DEOObjective, DINOLoss, IBOTLoss, LossConfig, LossError,
                                TeacherProbabilities, coding_rate, cross_view_cosine, expansion, koleo,
                                masked_patch_cross_entropy, patch_cosine, prototype_cross_entropy, sinkhorn_knopp)
from dualdistill.sensors import DualDistillError


def rng(seed=0):
    return np.random.default_rng(seed)


def t64(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


# ---- independent references -------------------------------------------------------------------------------------

def ref_cross_view_cosine(teacher, student):
    total, pairs = 0.0, 0
    for t in range(teacher.shape[0]):
        for v in range(student.shape[0]):
            if v == t: continue
            cos = [teacher[t, b] @ student[v, b] / (np.linalg.norm(teacher[t, b]) * np.linalg.norm(student[v, b]))
                   for b in range(teacher.shape[1])]
            total += np.mean(cos); pairs += 1
    return total / pairs


def ref_expansion(z_s, z_t, eps=0.05, gamma=None, n_processes=1):
    g, m, p = z_t.shape
    rates = []
    for t in range(g):
        zbar = (z_s[t] + z_t[t]) / 2
        sign, logdet = np.linalg.slogdet(np.eye(p) + p / (n_processes * m * eps) * zbar.T @ zbar)
        assert sign > 0
        rates.append(logdet / 2)
    scale = (p + n_processes * m) / (p * n_processes * m) if gamma is None else gamma
    return scale * np.mean(rates)


def ref_bilinear(x, out_h, out_w):
    "Bilinear resize of (C, h, w) with half-pixel centres (align_corners=False), written out."
    c, h, w = x.shape
    def taps(n_out, n_in):
        out = []
        for i in range(n_out):
            src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
            i0 = min(int(math.floor(src)), n_in - 1)
            i1 = min(i0 + 1, n_in - 1)
            out.append((i0, i1, src - i0))
        return out
    y = np.zeros((c, out_h, out_w))
    for i, (r0, r1, a) in enumerate(taps(out_h, h)):
        for j, (c0, c1, b) in enumerate(taps(out_w, w)):
            y[:, i, j] = ((1 - a) * (1 - b) * x[:, r0, c0] + (1 - a) * b * x[:, r0, c1]
                          + a * (1 - b) * x[:, r1, c0] + a * b * x[:, r1, c1])
    return y


def ref_patch_cosine(student, teacher):
    g, bsz, d, hh, ww = teacher.shape
    cos = []
    for t in range(g):
        for b in range(bsz):
            s = ref_bilinear(student[t, b], hh, ww)
            for i in range(hh):
                for j in range(ww):
                    cos.append(s[:, i, j] @ teacher[t, b, :, i, j] / (np.linalg.norm(s[:, i, j]) * np.linalg.norm(teacher[t, b, :, i, j])))
    return np.mean(cos)


def ref_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_log_softmax(x):
    return np.log(ref_softmax(x))


def ref_cross_entropy(student_logits, teacher_probs, tau_s=0.1):
    total, pairs = 0.0, 0
    for t in range(teacher_probs.shape[0]):
        for v in range(student_logits.shape[0]):
            if v == t: continue
            ce = [-(teacher_probs[t, b] * ref_log_softmax(student_logits[v, b] / tau_s)).sum() for b in range(student_logits.shape[1])]
            total += np.mean(ce); pairs += 1
    return total / pairs


def ref_sinkhorn(logits, temperature, iterations=3):
    "Sinkhorn-Knopp as DINOv2 states it, on (n, K) logits."
    q = np.exp(logits / temperature).T  # K x n
    k, n = q.shape
    q = q / q.sum()
    for _ in range(iterations):
        q = q / q.sum(1, keepdims=True) / k
        q = q / q.sum(0, keepdims=True) / n
    return (q * n).T


def ref_masked_ce(student, probs, mask, tau_s=0.1):
    per_image = []
    for b in range(student.shape[0]):
        ce = [-(probs[b, i] * ref_log_softmax(student[b, i] / tau_s)).sum() for i in range(student.shape[1]) if mask[b, i]]
        per_image.append(np.sum(ce) / max(len(ce), 1))
    return np.mean(per_image)


def ref_koleo(x, eps=1e-8):
    x = unit(x)
    out = []
    for i in range(len(x)):
        out.append(min(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i))
    return -np.mean(np.log(np.array(out) + eps))


# ---- alignment / class-token distillation ----------------------------------------------------------------------

def test_cross_view_cosine_matches_loop():
    r = rng(1)
    teacher, student = r.normal(size=(2, 5, 7)), r.normal(size=(6, 5, 7))
    got = cross_view_cosine(t64(teacher), t64(student)).item()
    assert got == pytest.approx(ref_cross_view_cosine(teacher, student), rel=1e-12)


def test_identical_embeddings_give_compression_one():
    z = unit(rng(2).normal(size=(1, 8, 16)))
    assert cross_view_cosine(t64(np.repeat(z, 2, 0)), t64(np.repeat(z, 12, 0))).item() == pytest.approx(1.0, abs=1e-12)


def test_same_view_pairs_are_left_out_and_normalised_by_2v_minus_2():
    # the student's global views equal the teacher's; every other view is the opposite of both
    z = unit(rng(3).normal(size=(1, 4, 8)))
    teacher = np.repeat(z, 2, 0)
    student = np.concatenate([teacher, -np.repeat(z, 4, 0)])  # V = 6
    # pairs: (0,1) and (1,0) give +1, the 8 pairs with local views give -1 -> (2 - 8) / (2 * 6 - 2)
    assert cross_view_cosine(t64(teacher), t64(student)).item() == pytest.approx((2 - 8) / 10)


# ---- coding rate ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("eps,gamma", [(0.05, None), (0.2, None), (0.05, 1.0)])
def test_expansion_matches_slogdet(eps, gamma):
    r = rng(4)
    z_s, z_t = unit(r.normal(size=(6, 10, 12))), unit(r.normal(size=(2, 10, 12)))
    got = expansion(t64(z_s), t64(z_t), eps=eps, gamma=gamma).item()
    assert got == pytest.approx(ref_expansion(z_s, z_t, eps, gamma), rel=1e-10)


def test_coding_rate_closed_forms():
    m, p, eps = 16, 64, 0.05
    gamma = (p + m) / (p * m)
    orthonormal = np.linalg.qr(rng(5).normal(size=(p, m)))[0].T  # m orthonormal rows
    assert coding_rate(t64(orthonormal[None])).item() == pytest.approx(gamma * m / 2 * math.log(1 + p / (m * eps)), rel=1e-12)
    # Z̄ = (z_s + z_t)/2 with z_s = z_t = Z is Z itself
    z = t64(orthonormal[None])
    assert expansion(z.repeat(4, 1, 1), z).item() == pytest.approx(gamma * m / 2 * math.log(1 + p / (m * eps)), rel=1e-12)
    collapsed = np.repeat(unit(rng(6).normal(size=(1, 1, p))), m, 1)
    assert coding_rate(t64(collapsed)).item() == pytest.approx(gamma / 2 * math.log(1 + p / eps), rel=1e-12)


def test_coding_rate_half_precision_is_promoted():
    z = F.normalize(torch.randn(2, 32, 64), dim=-1)
    got = coding_rate(z.bfloat16())
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(coding_rate(z.bfloat16().double()).item(), rel=1e-5)


def test_ms_objective_is_minus_c_minus_r():
    r = rng(7)
    z_s, z_t = unit(r.normal(size=(6, 9, 16))), unit(r.normal(size=(2, 9, 16)))
    loss, c, rate = CodingRateLoss()(t64(z_s), t64(z_t))
    c_ref, r_ref = ref_cross_view_cosine(z_t, z_s), ref_expansion(z_s, z_t)
    assert (c.item(), rate.item()) == pytest.approx((c_ref, r_ref), rel=1e-10)
    assert loss.item() == pytest.approx(-c_ref - r_ref, rel=1e-10)


# ---- patch distillation --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("student_grid,teacher_grid", [((5, 5), (3, 4)), ((2, 3), (4, 4)), ((4, 4), (4, 4))])
def test_patch_cosine_matches_written_out_bilinear(student_grid, teacher_grid):
    r = rng(8)
    student, teacher = r.normal(size=(2, 3, 6, *student_grid)), r.normal(size=(2, 3, 6, *teacher_grid))
    got = patch_cosine(t64(student), t64(teacher)).item()
    assert got == pytest.approx(ref_patch_cosine(student, teacher), rel=1e-10)


# ---- DINO family -----------------------------------------------------------------------------------------------------

def test_dino_loss_with_centering_matches_reference_over_two_steps():
    r = rng(9)
    k, tau_t = 10, 0.05
    loss = DINOLoss(k, center_momentum=0.8).double()
    center = np.zeros(k)
    for step in range(2):
        s, t = r.normal(size=(6, 4, k)), r.normal(size=(2, 4, k))
        probs = ref_softmax((t - center) / tau_t)
        expected = ref_cross_entropy(s, probs)
        assert loss(t64(s), t64(t), tau_t).item() == pytest.approx(expected, rel=1e-6)
        center = 0.8 * center + 0.2 * t.reshape(-1, k).mean(0)
        assert loss.teacher.center.numpy() == pytest.approx(center, rel=1e-6)


def test_eval_mode_freezes_the_centre():
    loss = DINOLoss(8).eval()
    loss(torch.randn(4, 3, 8), torch.randn(2, 3, 8), 0.04)
    assert torch.equal(loss.teacher.center, torch.zeros(8))


def test_uniform_teacher_gives_log_k():
    k = 37
    for method in ("centering", "sinkhorn"):
        loss = DINOLoss(k, teacher_probabilities=method)
        assert loss(torch.zeros(6, 5, k), torch.zeros(2, 5, k), 0.04).item() == pytest.approx(math.log(k), rel=1e-6)
    assert prototype_cross_entropy(t64(rng(10).normal(size=(4, 3, k))) * 0, t64(np.full((2, 3, k), 1 / k))).item() \
        == pytest.approx(math.log(k), rel=1e-12)


def test_sinkhorn_matches_reference():
    logits = rng(11).normal(size=(12, 7))
    got = sinkhorn_knopp(t64(logits), 0.5).numpy()
    assert got == pytest.approx(ref_sinkhorn(logits, 0.5), rel=1e-10)
    assert got.sum(1) == pytest.approx(np.ones(12), rel=1e-10)


def test_sinkhorn_is_stable_for_large_logits():
    logits = torch.randn(16, 8) * 50  # exp(logits / 0.04) overflows float32 and float64
    got = sinkhorn_knopp(logits, 0.04)
    assert torch.isfinite(got).all() and torch.allclose(got.sum(1), torch.ones(16), atol=1e-5)
    assert torch.allclose(got, sinkhorn_knopp(logits.double(), 0.04).float(), atol=1e-5)


def test_no_masked_tokens_leave_the_centre_alone():
    probs = TeacherProbabilities(4)
    out = probs(torch.randn(2, 3, 4), 0.1, torch.zeros(2, 3, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(2, 3, 4)) and torch.equal(probs.center, torch.zeros(4))
    assert sinkhorn_knopp(torch.zeros(0, 4), 0.1).shape == (0, 4)


def test_dino_loss_with_sinkhorn_matches_reference():
    r = rng(12)
    s, t = r.normal(size=(5, 4, 9)), r.normal(size=(2, 4, 9))
    probs = ref_sinkhorn(t.reshape(-1, 9), 0.07).reshape(2, 4, 9)
    got = DINOLoss(9, teacher_probabilities="sinkhorn").double()(t64(s), t64(t), 0.07).item()
    assert got == pytest.approx(ref_cross_entropy(s, probs), rel=1e-8)


def test_ibot_masked_patch_loss_matches_reference():
    r = rng(13)
    b, n_tok, k = 3, 6, 8
    s, t = r.normal(size=(b, n_tok, k)), r.normal(size=(b, n_tok, k))
    mask = np.array([[1, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)  # image 1 has none masked
    probs = ref_softmax(t / 0.04)  # centre starts at zero
    expected = ref_masked_ce(s, probs, mask)
    got = IBOTLoss(k).double()(t64(s), t64(t), torch.tensor(mask), 0.04).item()
    assert got == pytest.approx(expected, rel=1e-8)
    # with Sinkhorn the teacher probabilities come from the masked tokens only
    probs = np.zeros_like(t); probs[mask] = ref_sinkhorn(t[mask], 0.04)
    got = IBOTLoss(k, teacher_probabilities="sinkhorn").double()(t64(s), t64(t), torch.tensor(mask), 0.04).item()
    assert got == pytest.approx(ref_masked_ce(s, probs, mask), rel=1e-8)
    # the masked tokens' logits alone, (n, K) in mask order, give the same loss without materialising the others
    for method in ("centering", "sinkhorn"):
        full = IBOTLoss(k, teacher_probabilities=method).double()(t64(s), t64(t), torch.tensor(mask), 0.04).item()
        rows = IBOTLoss(k, teacher_probabilities=method).double()(t64(s[mask]), t64(t[mask]), torch.tensor(mask), 0.04).item()
        assert rows == pytest.approx(full, rel=1e-12)
    with pytest.raises(LossError, match="masked tokens"): IBOTLoss(k).double()(t64(s[mask][:3]), t64(t[mask][:3]), torch.tensor(mask), 0.04)


def test_ibot_centre_uses_masked_tokens():
    t = torch.randn(2, 5, 4, dtype=torch.float64)
    mask = torch.tensor([[True, False, True, False, False], [False] * 5])
    probs = TeacherProbabilities(4, center_momentum=0.5).double()
    probs(t, 0.1, mask)
    assert torch.allclose(probs.center, 0.5 * t[mask].mean(0))


def test_koleo_known_neighbour_distances():
    angles = np.deg2rad([0.0, 30, 100, 200])
    points = np.stack([np.cos(angles), np.sin(angles)], 1) * np.array([[1.0], [3.0], [0.5], [2.0]])  # norms do not matter
    nn = 2 * np.sin(np.deg2rad([15, 15, 35, 50]))  # chords to the nearest neighbours (30°, 30°, 70°, 100° apart)
    assert koleo(t64(points)).item() == pytest.approx(-np.mean(np.log(nn + 1e-8)), rel=1e-10)
    x = rng(14).normal(size=(9, 5))
    assert koleo(t64(x)).item() == pytest.approx(ref_koleo(x), rel=1e-10)


# ---- combined objective -------------------------------------------------------------------------------------------

def objective_inputs(r, batch=3, views=4, p=8, width=6, grad=False):
    return dict(ms_student=t64(unit(r.normal(size=(views, batch, p))), grad), ms_teacher=t64(unit(r.normal(size=(2, batch, p)))),
                cls_student=t64(r.normal(size=(views, batch, width)), grad), cls_teacher=t64(r.normal(size=(2, batch, width))),
                mid_student=t64(r.normal(size=(2, batch, width, 4, 4)), grad), mid_teacher=t64(r.normal(size=(2, batch, width, 3, 3))),
                late_student=t64(r.normal(size=(2, batch, width, 4, 4)), grad), late_teacher=t64(r.normal(size=(2, batch, width, 2, 2))))


def reference_terms(x):
    n = {k: v.detach().numpy() for k, v in x.items()}
    terms = dict(cls=ref_cross_view_cosine(n["cls_teacher"], n["cls_student"]),
                 mid=ref_patch_cosine(n["mid_student"], n["mid_teacher"]), late=ref_patch_cosine(n["late_student"], n["late_teacher"]))
    if "ms_student" in n:
        terms.update(compression=ref_cross_view_cosine(n["ms_teacher"], n["ms_student"]), expansion=ref_expansion(n["ms_student"], n["ms_teacher"]))
    return terms


@pytest.mark.parametrize("config,weights", [(LossConfig(), (1, 1, 0.5, 0.25, 0.25)), (LossConfig.paper(), (1, 1, 1, 0.5, 0.5)),
                                            (LossConfig(w_compression=2, w_expansion=0.5, w_cls=0.1, w_mid=0, w_late=3), (2, 0.5, 0.1, 0, 3))])
def test_objective_total_and_terms(config, weights):
    x = objective_inputs(rng(15))
    ref = reference_terms(x)
    out = DEOObjective(config)(**x)
    for name in ref: assert out[name] == pytest.approx(ref[name], rel=1e-9)
    total = -sum(w * ref[name] for w, name in zip(weights, ("compression", "expansion", "cls", "mid", "late")))
    assert out["loss"].item() == pytest.approx(total, rel=1e-9)
    assert all(isinstance(v, float) for k, v in out.items() if k != "loss")


def test_single_teacher_switches():
    x = objective_inputs(rng(16))
    ref = reference_terms(x)
    ms_only = DEOObjective(LossConfig(use_optical_teacher=False))(**x)
    assert set(ms_only) == {"loss", "compression", "expansion"}
    assert ms_only["loss"].item() == pytest.approx(-ref["compression"] - ref["expansion"], rel=1e-9)
    optical = {k: v for k, v in x.items() if not k.startswith("ms_")}
    optical_only = DEOObjective(LossConfig(use_ms_teacher=False))(**optical)
    assert set(optical_only) == {"loss", "cls", "mid", "late"}
    assert optical_only["loss"].item() == pytest.approx(-0.5 * ref["cls"] - 0.25 * ref["mid"] - 0.25 * ref["late"], rel=1e-9)


def test_teacher_receives_no_gradient():
    x = objective_inputs(rng(17), grad=True)
    for k in ("ms_teacher", "cls_teacher", "mid_teacher", "late_teacher"): x[k].requires_grad_(True)
    DEOObjective()(**x)["loss"].backward()
    assert all(x[k].grad is None for k in ("ms_teacher", "cls_teacher", "mid_teacher", "late_teacher"))
    assert all(x[k].grad is not None for k in ("ms_student", "cls_student", "mid_student", "late_student"))


def test_dino_family_replaces_the_ms_terms():
    r = rng(18)
    k, tau_t = 11, 0.06
    x = objective_inputs(r)
    del x["ms_student"], x["ms_teacher"]
    s, t = r.normal(size=(4, 3, k)), r.normal(size=(2, 3, k))
    ps, pt = r.normal(size=(6, 5, k)), r.normal(size=(6, 5, k))
    mask = r.random(size=(6, 5)) < 0.5
    feats = r.normal(size=(2, 3, 7))
    config = LossConfig(ms_objective="dino", n_prototypes=k, n_patch_prototypes=k)
    objective = DEOObjective(config).double()
    out = objective(dino_student=t64(s), dino_teacher=t64(t), teacher_temperature=tau_t, ibot_student=t64(ps), ibot_teacher=t64(pt),
                    patch_mask=torch.tensor(mask), koleo_features=t64(feats), **x)
    ref = reference_terms(x)
    dino = ref_cross_entropy(s, ref_softmax(t / tau_t))
    ibot = ref_masked_ce(ps, ref_softmax(pt / tau_t), mask)
    kol = ref_koleo(feats[0]) + ref_koleo(feats[1])
    assert (out["dino"], out["ibot"], out["koleo"]) == pytest.approx((dino, ibot, kol), rel=1e-8)
    total = dino + ibot + 0.1 * kol - 0.5 * ref["cls"] - 0.25 * ref["mid"] - 0.25 * ref["late"]
    assert out["loss"].item() == pytest.approx(total, rel=1e-8)
    assert {"dino.fn.teacher.center", "ibot.fn.teacher.center"} <= set(objective.state_dict())
    with pytest.raises(LossError, match="teacher_temperature"):
        objective(dino_student=t64(s), dino_teacher=t64(t), **x)


def test_missing_inputs_and_bad_config_raise():
    x = objective_inputs(rng(19))
    del x["late_teacher"]
    with pytest.raises(LossError, match="late"): DEOObjective()(**x)
    out = DEOObjective(LossConfig(w_late=0))(**x)  # a zero-weight term may be left out
    assert "late" not in out
    with pytest.raises(LossError): LossConfig(ms_objective="byol")
    with pytest.raises(LossError): LossConfig(teacher_probabilities="softmax")
    with pytest.raises(LossError): LossConfig(use_ms_teacher=False, use_optical_teacher=False)
    with pytest.raises(LossError): DEOObjective()()


def test_shape_errors_are_package_errors():
    with pytest.raises(LossError) as e: cross_view_cosine(torch.randn(2, 4, 8), torch.randn(6, 5, 8))
    assert isinstance(e.value, DualDistillError) and isinstance(e.value, ValueError) and "(2, 4, 8)" in str(e.value)
    with pytest.raises(LossError): cross_view_cosine(torch.randn(2, 4, 8), torch.randn(1, 4, 8))
    with pytest.raises(LossError): expansion(torch.randn(4, 3, 8), torch.randn(3, 3, 8).flatten(1))
    with pytest.raises(LossError): patch_cosine(torch.randn(2, 4, 8, 3, 3), torch.randn(2, 4, 9, 3, 3))
    with pytest.raises(LossError): masked_patch_cross_entropy(torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.ones(2, 3))
    with pytest.raises(LossError): koleo(torch.randn(1, 4))
    with pytest.raises(LossError): DINOLoss(8)(torch.randn(4, 2, 9), torch.randn(2, 2, 9), 0.04)
    with pytest.raises(LossError): TeacherProbabilities(8, method="argmax")
    with pytest.raises(LossError): coding_rate(torch.randn(1, 4, 4), eps=0)
    with pytest.raises(LossError): TeacherProbabilities(4)(torch.randn(2, 3, 4), 0.1, torch.ones(2, 3, dtype=torch.int64))


def test_objective_under_autocast():
    torch.manual_seed(2)
    x = {k: v.float() for k, v in objective_inputs(rng(21), batch=8, views=6, p=32, width=16).items()}
    reference = DEOObjective()(**x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = DEOObjective()(**{k: v.bfloat16() for k, v in x.items()})
    assert mixed["loss"].dtype == torch.float32 and torch.isfinite(mixed["loss"])
    assert mixed["expansion"] == pytest.approx(reference["expansion"], rel=1e-2)
    assert mixed["loss"].item() == pytest.approx(reference["loss"].item(), rel=2e-2)


# ---- invariances and gradients -----------------------------------------------------------------------------------

def test_losses_are_invariant_to_permuting_the_batch():
    torch.manual_seed(0)
    perm = torch.randperm(6)
    zs, zt = F.normalize(torch.randn(5, 6, 16, dtype=torch.float64), dim=-1), F.normalize(torch.randn(2, 6, 16, dtype=torch.float64), dim=-1)
    ms, mt = torch.randn(2, 6, 8, 3, 3, dtype=torch.float64), torch.randn(2, 6, 8, 2, 2, dtype=torch.float64)
    s, t = torch.randn(5, 6, 10, dtype=torch.float64), torch.randn(2, 6, 10, dtype=torch.float64)
    ps, pt, mask = torch.randn(6, 4, 10, dtype=torch.float64), torch.randn(6, 4, 10, dtype=torch.float64), torch.rand(6, 4) < 0.5
    cases = [(lambda p: cross_view_cosine(zt[:, p], zs[:, p])), (lambda p: expansion(zs[:, p], zt[:, p])),
             (lambda p: patch_cosine(ms[:, p], mt[:, p])), (lambda p: koleo(zs[0, p])),
             (lambda p: DINOLoss(10).double()(s[:, p], t[:, p], 0.05)),
             (lambda p: DINOLoss(10, teacher_probabilities="sinkhorn").double()(s[:, p], t[:, p], 0.05)),
             (lambda p: IBOTLoss(10).double()(ps[p], pt[p], mask[p], 0.05)),
             (lambda p: IBOTLoss(10, teacher_probabilities="sinkhorn").double()(ps[p], pt[p], mask[p], 0.05))]
    identity = torch.arange(6)
    for fn in cases: assert fn(perm).item() == pytest.approx(fn(identity).item(), rel=1e-10)


def test_gradcheck():
    torch.manual_seed(1)
    d = dict(dtype=torch.float64, requires_grad=True)
    zt, ct = F.normalize(torch.randn(2, 3, 5, dtype=torch.float64), dim=-1), torch.randn(2, 3, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: cross_view_cosine(ct, s), (torch.randn(4, 3, 5, **d),))
    assert torch.autograd.gradcheck(lambda s: expansion(s, zt), (torch.randn(4, 3, 5, **d),))
    assert torch.autograd.gradcheck(lambda z: coding_rate(z, eps=0.3), (torch.randn(2, 6, 4, **d),))
    teacher_maps = torch.randn(2, 2, 3, 2, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: patch_cosine(s, teacher_maps), (torch.randn(2, 2, 3, 3, 3, **d),))
    probs = torch.softmax(torch.randn(2, 3, 6, dtype=torch.float64), -1)
    assert torch.autograd.gradcheck(lambda s: prototype_cross_entropy(s, probs), (torch.randn(4, 3, 6, **d),))
    mask = torch.tensor([[True, False, True], [False, False, False]])
    patch_probs = torch.softmax(torch.randn(2, 3, 6, dtype=torch.float64), -1)
    assert torch.autograd.gradcheck(lambda s: masked_patch_cross_entropy(s, patch_probs, mask), (torch.randn(2, 3, 6, **d),))
    assert torch.autograd.gradcheck(koleo, (torch.randn(5, 3, **d),))
    x = objective_inputs(rng(20), batch=2, views=3, p=4, width=3)
    objective = DEOObjective()
    names = ("ms_student", "cls_student", "mid_student", "late_student")
    def total(*students): return objective(**{**x, **dict(zip(names, students))})["loss"]
    assert torch.autograd.gradcheck(total, tuple(x[n].clone().requires_grad_(True) for n in names), fast_mode=True)
