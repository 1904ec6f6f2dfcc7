"Behaviour of the multi-crop views, their normalisation and the block masks."
import numpy as np
import pytest
import torch
from dualdistill.sensors import BandError, BandStats, DEO_BANDS, DEO_STATS, SENTINEL2_L1C
from dualdistill.views import (BlockMasker, MultiCropViews, ViewConfig, ViewError, collate_views, normalise,
                               normalise_chip, unit_rgb)

# DEO statistics as published (DESIGN 2.1), written out independently of dualdistill.sensors
DEO_MEAN = np.array([0.4182, 0.4215, 0.3991, 1263.74, 1645.40, 1846.87, 1762.60, 1972.62, 1732.16, 1247.92])
DEO_STD = np.array([0.2877, 0.2754, 0.2764, 948.98, 1108.07, 1258.36, 1233.15, 1364.39, 1310.37, 1087.60])
RGB, OTHERS = [0, 1, 2], list(range(3, 10))
UNIT_STATS = BandStats(DEO_BANDS.names, (0.0,) * 10, (1.0,) * 10, rgb_max_scaled=True)
SMALL = ViewConfig(global_size=32, local_size=16, n_local=3)
NO_COLOUR = ViewConfig(global_size=32, local_size=16, n_local=3, photometric=False)


def ramp_image(height, width, bands=10):
    "Every band the same ramp: pixel (i, j) holds 1000 + i * width + j."
    ramp = 1000.0 + np.arange(height * width, dtype=np.float64).reshape(height, width)
    return np.repeat(ramp[None], bands, 0).astype(np.float32), ramp


def raw_image(seed=0, height=64, width=64):
    "Random digital numbers for the ten DEO bands."
    return np.random.default_rng(seed).uniform(200, 4000, (10, height, width)).astype(np.float32)


def test_shapes_and_counts():
    views = MultiCropViews()(raw_image(height=300, width=260), generator=0)
    assert [tuple(v.shape) for v in views] == [(10, 224, 224)] * 2 + [(10, 96, 96)] * 10
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in views)
    small = MultiCropViews(config=ViewConfig(global_size=40, local_size=12, n_local=0))(raw_image(), generator=0)
    assert [tuple(v.shape) for v in small] == [(10, 40, 40)] * 2


def test_tiny_views_with_blur():
    always_blur = ViewConfig(global_size=3, local_size=2, n_local=2, blur_p=(1, 1, 1), blur_sigma=(2, 2))
    views = MultiCropViews(config=always_blur)(raw_image(height=8, width=8), generator=0)
    assert [tuple(v.shape) for v in views] == [(10, 3, 3)] * 2 + [(10, 2, 2)] * 2


def test_geometry_identical_across_bands():
    image, _ = ramp_image(80, 70)
    for interpolation in ("bicubic", "bilinear", "nearest"):
        views = MultiCropViews(DEO_BANDS, UNIT_STATS, ViewConfig(interpolation=interpolation, global_size=40, local_size=20))(image, generator=3)
        for v in views:
            for b in OTHERS[1:]: assert torch.equal(v[b], v[OTHERS[0]])


def test_crop_and_flip_recomputed_by_hand():
    image, ramp = ramp_image(100, 80)
    # every crop is a 64 x 64 window (area 4096 of 8000, square), resized by nearest to 32: pixel (i, j) = window (2i, 2j)
    config = ViewConfig(global_size=32, local_size=32, n_local=6, global_scale=(0.512, 0.512), local_scale=(0.512, 0.512),
                        ratio=(1, 1), interpolation="nearest", photometric=False)
    views_of = MultiCropViews(DEO_BANDS, UNIT_STATS, config)
    views, crops = views_of(image, generator=11), views_of.crops(100, 80, generator=11)
    assert {c.flip for c in crops} == {True, False}
    for v, c in zip(views, crops):
        assert (c.height, c.width) == (64, 64)
        expected = ramp[c.top:c.top + 64:2, c.left:c.left + 64:2]
        if c.flip: expected = expected[:, ::-1]
        for b in OTHERS: np.testing.assert_array_equal(v[b].numpy(), expected)
        rgb = expected / expected.max()  # RGB bands are the same ramp, so the RGB maximum is the ramp's
        for b in RGB: np.testing.assert_allclose(v[b].numpy(), rgb, rtol=1e-6)


def test_identity_size_crop_with_bicubic():
    image, ramp = ramp_image(48, 40)
    config = ViewConfig(global_size=24, local_size=24, n_local=2, global_scale=(0.3, 0.3), local_scale=(0.3, 0.3),
                        ratio=(1, 1), photometric=False)  # 0.3 * 48 * 40 = 576 = 24 * 24: no resampling
    views_of = MultiCropViews(DEO_BANDS, UNIT_STATS, config)
    for v, c in zip(views_of(image, generator=5), views_of.crops(48, 40, generator=5)):
        expected = ramp[c.top:c.top + 24, c.left:c.left + 24]
        if c.flip: expected = expected[:, ::-1]
        for b in OTHERS: np.testing.assert_allclose(v[b].numpy(), expected, rtol=1e-6)


def test_colour_operations_leave_other_bands_alone():
    image = raw_image(1)
    always = dict(jitter_p=1.0, grayscale_p=0.5, blur_p=(1, 1, 1), solarize_p=(0.5, 0.5, 0.5))
    coloured = MultiCropViews(config=ViewConfig(global_size=32, local_size=16, n_local=3, **always))(image, generator=7)
    plain = MultiCropViews(config=ViewConfig(global_size=32, local_size=16, n_local=3, photometric=False, **always))(image, generator=7)
    for a, b in zip(coloured, plain): assert torch.equal(a[OTHERS], b[OTHERS])
    assert all(not torch.allclose(a[RGB], b[RGB]) for a, b in zip(coloured, plain))


def test_normalise_matches_float64_by_hand():
    x = raw_image(2, 8, 8)
    expected = (x.astype(np.float64) - DEO_MEAN[:, None, None]) / DEO_STD[:, None, None]
    np.testing.assert_allclose(normalise(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-5)
    batch = torch.from_numpy(np.stack([x, 2 * x]))
    np.testing.assert_allclose(normalise(batch)[1].numpy(), (2 * x.astype(np.float64) - DEO_MEAN[:, None, None]) / DEO_STD[:, None, None], rtol=1e-5, atol=1e-5)
    # the input transform without augmentation: RGB over its maximum over the three RGB channels, then standardised
    chip = x.astype(np.float64)
    scaled = chip.copy()
    scaled[RGB] = chip[RGB] / chip[RGB].max()
    np.testing.assert_allclose(normalise_chip(x).numpy(), (scaled - DEO_MEAN[:, None, None]) / DEO_STD[:, None, None], rtol=1e-5, atol=1e-5)


def test_views_normalised_by_hand():
    image, ramp = ramp_image(48, 40)
    config = ViewConfig(global_size=24, local_size=24, n_local=1, global_scale=(0.3, 0.3), local_scale=(0.3, 0.3),
                        ratio=(1, 1), interpolation="nearest", photometric=False)
    views_of = MultiCropViews(DEO_BANDS, DEO_STATS, config)
    for v, c in zip(views_of(image, generator=1), views_of.crops(48, 40, generator=1)):
        window = ramp[c.top:c.top + 24, c.left:c.left + 24]
        if c.flip: window = window[:, ::-1]
        for b in OTHERS: np.testing.assert_allclose(v[b].numpy(), (window - DEO_MEAN[b]) / DEO_STD[b], rtol=1e-5, atol=1e-5)
        for b in RGB: np.testing.assert_allclose(v[b].numpy(), (window / window.max() - DEO_MEAN[b]) / DEO_STD[b], rtol=1e-5, atol=1e-5)


def test_raw_rgb_standardised_without_max_scaling():
    raw_stats = BandStats(DEO_BANDS.names, (1000.0,) * 3 + tuple(DEO_MEAN[3:]), (500.0,) * 3 + tuple(DEO_STD[3:]))
    with pytest.raises(ViewError, match="rgb_max_scaled"): MultiCropViews(DEO_BANDS, raw_stats, SMALL)
    image, ramp = ramp_image(48, 40)
    config = ViewConfig(global_size=24, local_size=24, n_local=0, global_scale=(0.3, 0.3), ratio=(1, 1), photometric=False)
    views_of = MultiCropViews(DEO_BANDS, raw_stats, config)
    v, c = views_of(image, generator=2)[0], views_of.crops(48, 40, generator=2)[0]
    window = ramp[c.top:c.top + 24, c.left:c.left + 24]
    if c.flip: window = window[:, ::-1]
    for b in RGB: np.testing.assert_allclose(v[b].numpy(), (window - 1000) / 500, rtol=1e-5, atol=1e-5)
    with pytest.raises(ViewError, match="rgb_max_scaled"): views_of.unit_rgb(v)


def test_unit_rgb_inverts_normalisation():
    y = torch.rand(2, 10, 5, 5, generator=torch.Generator().manual_seed(0))
    y[:, OTHERS] *= 3000
    np.testing.assert_allclose(unit_rgb(normalise(y)).numpy(), y[:, RGB].numpy(), atol=1e-6)
    rgb_only = DEO_BANDS.select(["B04", "B03", "B02"])
    np.testing.assert_allclose(unit_rgb(normalise(y[0, RGB], rgb_only), rgb_only).numpy(), y[0, RGB].numpy(), atol=1e-6)
    # on coloured views: the unclamped inverse already lies in [0, 1]
    views = MultiCropViews(config=SMALL)(raw_image(3), generator=0)
    for v in views:
        unclamped = v[RGB].double() * torch.tensor(DEO_STD[RGB]).view(3, 1, 1) + torch.tensor(DEO_MEAN[RGB]).view(3, 1, 1)
        assert unclamped.min() > -1e-5 and unclamped.max() < 1 + 1e-5
        np.testing.assert_allclose(unit_rgb(v).numpy(), unclamped.clamp(0, 1).numpy(), atol=1e-6)
    with pytest.raises(BandError): unit_rgb(torch.zeros(3, 4, 4), DEO_BANDS.select(["B08", "B11", "B12"]))


def test_seed_reproducibility():
    image, views_of = raw_image(4), MultiCropViews(config=SMALL)
    same = [views_of(image, generator=42), views_of(image, generator=42),
            views_of(image, generator=torch.Generator().manual_seed(42))]
    assert all(torch.equal(a, b) for other in same[1:] for a, b in zip(same[0], other))
    assert not torch.equal(views_of(image, generator=43)[0], same[0][0])
    g = torch.Generator().manual_seed(0)
    assert not torch.equal(views_of(image, generator=g)[0], views_of(image, generator=g)[0])
    torch.manual_seed(0); first = views_of(image)
    torch.manual_seed(0); again = views_of(image)
    assert all(torch.equal(a, b) for a, b in zip(first, again))


class SameImage(torch.utils.data.Dataset):
    "The same raw image at every index, turned into views."
    def __init__(self, views): self.image, self.views = raw_image(5, 40, 40), views
    def __len__(self): return 4
    def __getitem__(self, i): return self.views(self.image)


def test_reproducible_in_dataloader_workers():
    dataset = SameImage(MultiCropViews(config=SMALL))
    def load():
        loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2, collate_fn=collate_views,
                                             generator=torch.Generator().manual_seed(0))
        return [batch[0][0] for batch in loader]
    first, again = load(), load()
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1])  # the two workers do not repeat each other's views


def test_band_sets_with_and_without_rgb():
    image = raw_image(6)
    nir = DEO_BANDS.select(["B08", "B11", "B12"])
    assert nir.rgb is None
    for a, b in zip(MultiCropViews(nir, DEO_STATS, SMALL)(image[-3:], generator=0), MultiCropViews(nir, DEO_STATS, NO_COLOUR)(image[-3:], generator=0)):
        assert torch.equal(a, b)  # colour operations do not exist without RGB
    rgb_only = DEO_BANDS.select(["B04", "B03", "B02"])
    views = MultiCropViews(rgb_only, DEO_STATS, SMALL)(image[:3], generator=0)
    assert [v.shape[0] for v in views] == [3] * 5
    l1c_stats = BandStats(SENTINEL2_L1C.names, (1000.0,) * 13, (500.0,) * 13)
    assert len(MultiCropViews(SENTINEL2_L1C, l1c_stats, NO_COLOUR)(raw_image(7, 40, 40).repeat(2, 0)[:13], generator=0)) == 5


def test_wrong_input_raises():
    views_of = MultiCropViews(config=SMALL)
    with pytest.raises(BandError, match="expected 10 channels"): views_of(raw_image()[:9])
    with pytest.raises(ViewError, match=r"\(C, H, W\)"): views_of(raw_image()[None])
    with pytest.raises(BandError, match="no statistics"): MultiCropViews(SENTINEL2_L1C, DEO_STATS, SMALL)
    with pytest.raises(BandError): normalise(torch.zeros(4, 3, 3))
    for bad in (dict(global_scale=(0.5, 0.2)), dict(ratio=(0, 1)), dict(jitter=(0.4, 0.4, 0.2)), dict(grayscale_p=-0.1),
                dict(solarize_p=(0, 2, 0)), dict(n_local=-1), dict(global_size=0), dict(interpolation="area")):
        with pytest.raises(ViewError): ViewConfig(**bad)


def test_collate_views():
    views_of = MultiCropViews(config=SMALL)
    items = [views_of(raw_image(i), generator=i) for i in range(3)]
    batch = collate_views(items)
    assert [tuple(b.shape) for b in batch] == [(3, 10, 32, 32)] * 2 + [(3, 10, 16, 16)] * 3
    assert torch.equal(batch[3][2], items[2][3])
    with pytest.raises(ViewError, match="same number of views"): collate_views([items[0], items[1][:3]])


def covered_by_blocks(mask: np.ndarray, min_block: int) -> bool:
    "Whether every masked patch lies in an all-masked rectangle of at least `min_block` patches."
    h, w = mask.shape
    integral = np.zeros((h + 1, w + 1), int)
    integral[1:, 1:] = mask.cumsum(0).cumsum(1)
    covered = np.zeros_like(mask)
    for bh in range(1, h + 1):
        for bw in range(1, w + 1):
            if bh * bw < min_block: continue
            for top in range(h - bh + 1):
                for left in range(w - bw + 1):
                    total = integral[top + bh, left + bw] - integral[top, left + bw] - integral[top + bh, left] + integral[top, left]
                    if total == bh * bw: covered[top:top + bh, left:left + bw] = True
    return bool((covered | ~mask).all())


@pytest.mark.parametrize("grid, ratio, min_block", [(14, (0.1, 0.5), 4), (6, (0.1, 0.5), 4), ((6, 10), (0.2, 0.6), 6), (14, (0.4, 0.6), 16)])
def test_mask_ratio_and_block_size(grid, ratio, min_block):
    masker = BlockMasker(grid, ratio=ratio, min_block=min_block)
    masks = masker.batch(300, generator=0)
    h, w = (grid, grid) if isinstance(grid, int) else grid
    assert masks.shape == (300, h, w) and masks.dtype == torch.bool
    fractions = masks.float().mean((1, 2)).numpy()
    assert fractions.min() >= ratio[0] and fractions.max() <= ratio[1]
    assert len(np.unique(fractions)) > 5  # the ratio is drawn per mask
    assert all(covered_by_blocks(m.numpy(), min_block) for m in masks[:40])


def test_mask_reproducible_and_checked():
    masker = BlockMasker((7, 9))
    assert torch.equal(masker(1), masker(1)) and torch.equal(masker.batch(4, 2), masker.batch(4, 2))
    assert not torch.equal(masker.batch(8, 1), masker.batch(8, 2))
    with pytest.raises(ViewError, match="min_block"): BlockMasker(4, ratio=(0.1, 0.2), min_block=4)
    with pytest.raises(ViewError): BlockMasker(14, ratio=(0.5, 0.1))
    with pytest.raises(ViewError): BlockMasker(0)
