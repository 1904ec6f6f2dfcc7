"""Two gloo processes against one process on the concatenated batch.

Equal wherever the maths says so: the coding rate with the covariance all-reduced (value, and gradient after DDP's
averaging), the DINO centre, Sinkhorn-Knopp (also with uneven masks), and the combined objective averaged over
processes. Not equal for the per-process covariance (the reference's default): there each process's R is the coding
rate of its own m rows scaled as if there were N m, which the test writes out.
"""
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dualdistill.losses import DEOObjective, DINOLoss, IBOTLoss, LossConfig, expansion, sinkhorn_knopp

N_PROCESSES, M = 2, 4  # processes, batch per process
V, P, K, TOKENS, WIDTH = 4, 6, 5, 3, 4


def make_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    def randn(*shape): return torch.randn(*shape, generator=g, dtype=torch.float64)
    unit = lambda x: x / x.norm(dim=-1, keepdim=True)
    n = N_PROCESSES * M
    mask = torch.zeros(n, TOKENS, dtype=torch.bool)
    mask[0, :2] = True; mask[5] = True  # process 0 holds 2 masked tokens, process 1 holds 3
    return dict(z_s=unit(randn(V, n, P)), z_t=unit(randn(2, n, P)), s=randn(V, n, K), t=randn(2, n, K),
                t2=randn(2, n, K), patch_s=randn(n, TOKENS, K), patch_t=randn(n, TOKENS, K), mask=mask,
                cls_s=randn(V, n, WIDTH), cls_t=randn(2, n, WIDTH), map_s=randn(2, n, WIDTH, 3, 3), map_t=randn(2, n, WIDTH, 2, 2))


def compute(x, batch_slice, patch_slice):
    "Every quantity the test compares, on the rows `batch_slice` (views x batch) and `patch_slice` (images)."
    b = lambda key: x[key][:, batch_slice]
    out = {}
    z_s = b("z_s").clone().requires_grad_(True)
    rate = expansion(z_s, b("z_t"), reduce_covariance=True)
    rate.backward()
    out["rate_reduced"], out["rate_grad"] = rate.detach(), z_s.grad
    out["rate_per_process"] = expansion(b("z_s"), b("z_t"), reduce_covariance=False)
    centering = DINOLoss(K, center_momentum=0.9).double()
    out["dino_centering"] = torch.stack([centering(b("s"), b("t"), 0.05), centering(b("s"), b("t2"), 0.05)])
    out["center"] = centering.teacher.center.clone()
    out["sinkhorn"] = sinkhorn_knopp(b("t").reshape(-1, K), 0.05)
    out["dino_sinkhorn"] = DINOLoss(K, teacher_probabilities="sinkhorn").double()(b("s"), b("t"), 0.05)
    ibot = IBOTLoss(K, teacher_probabilities="sinkhorn").double()
    mask = x["mask"][patch_slice]
    out["ibot_probs"] = ibot.teacher(x["patch_t"][patch_slice], 0.05, mask)
    out["ibot_sinkhorn"] = ibot(x["patch_s"][patch_slice], x["patch_t"][patch_slice], mask, 0.05)
    objective = DEOObjective(LossConfig(reduce_covariance=True))
    out["objective"] = objective(ms_student=b("z_s"), ms_teacher=b("z_t"), cls_student=b("cls_s"), cls_teacher=b("cls_t"),
                                 mid_student=b("map_s"), mid_teacher=b("map_t"), late_student=b("map_s"), late_teacher=b("map_t"))["loss"]
    return out


def worker(rank, port, path):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=N_PROCESSES)
    try:
        x = torch.load(f"{path}/inputs.pt", weights_only=True)
        rows = slice(rank * M, (rank + 1) * M)
        torch.save(compute(x, rows, rows), f"{path}/rank{rank}.pt")
        dist.barrier()  # no rank tears its connections down while the other still uses them (gloo aborts then)
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    path = tmp_path_factory.mktemp("dist")
    x = make_inputs()
    torch.save(x, path / "inputs.pt")
    single = compute(x, slice(None), slice(None))
    mp.spawn(worker, args=(free_port(), str(path)), nprocs=N_PROCESSES, join=True)
    ranks = [torch.load(path / f"rank{r}.pt", weights_only=True) for r in range(N_PROCESSES)]
    return x, single, ranks


def close(a, b): return torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_all_reduced_covariance_gives_the_global_coding_rate(results):
    _, single, ranks = results
    assert all(close(r["rate_reduced"], single["rate_reduced"]) for r in ranks)
    # each process's gradient is N times its share; DDP's averaging over N processes makes it exact
    grads = torch.cat([r["rate_grad"] for r in ranks], 1) / N_PROCESSES
    assert close(grads, single["rate_grad"])


def test_per_process_covariance_differs_as_documented(results):
    x, single, ranks = results
    for rank, r in enumerate(ranks):
        assert not torch.isclose(r["rate_per_process"], single["rate_per_process"], rtol=1e-3)
        # written out: local m rows, but the scale p / (N m eps) and gamma = (p + N m) / (p N m) of the global batch
        rows = slice(rank * M, (rank + 1) * M)
        rates = []
        for t in range(2):
            zbar = ((x["z_s"][t, rows] + x["z_t"][t, rows]) / 2).numpy()
            rates.append(np.linalg.slogdet(np.eye(P) + P / (N_PROCESSES * M * 0.05) * zbar.T @ zbar)[1] / 2)
        gamma = (P + N_PROCESSES * M) / (P * N_PROCESSES * M)
        assert r["rate_per_process"].item() == pytest.approx(gamma * np.mean(rates), rel=1e-10)


def test_centering_uses_the_global_batch_mean(results):
    _, single, ranks = results
    assert all(close(r["center"], single["center"]) for r in ranks)
    # both steps' losses (the second uses the updated centre) average to the single-process losses
    assert close(sum(r["dino_centering"] for r in ranks) / N_PROCESSES, single["dino_centering"])


def test_sinkhorn_uses_the_global_batch(results):
    _, single, ranks = results
    # rows are (view, sample); the single process orders them view-major over the whole batch
    per_rank = [r["sinkhorn"].reshape(2, M, K) for r in ranks]
    assert close(torch.cat(per_rank, 1).reshape(-1, K), single["sinkhorn"])
    assert close(sum(r["dino_sinkhorn"] for r in ranks) / N_PROCESSES, single["dino_sinkhorn"])


def test_sinkhorn_on_uneven_masked_tokens(results):
    _, single, ranks = results
    assert close(torch.cat([r["ibot_probs"] for r in ranks]), single["ibot_probs"])
    assert close(sum(r["ibot_sinkhorn"] for r in ranks) / N_PROCESSES, single["ibot_sinkhorn"])


def test_objective_averaged_over_processes(results):
    _, single, ranks = results
    assert close(sum(r["objective"] for r in ranks) / N_PROCESSES, single["objective"])
