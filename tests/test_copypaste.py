"""Copy-paste augmentation: exact pixels, scene exclusion, rarity weights, determinism, components, speed."""

from __future__ import annotations


import numpy as np
import pytest

from landaug.copypaste import ComponentBank, check_options, paste, paste_batch, transform
from landaug.errors import UserError
from landaug.synthetic import make_scene


def synthetic_set(n: int, size: int, dtype=np.uint8, bands: int = 3, per_scene: int = 2):
    """``n`` synthetic tiles, ``per_scene`` consecutive tiles sharing a scene name."""
    pairs = [make_scene(seed, size) for seed in range(n)]
    photos = np.stack([p for p, _ in pairs]).astype(dtype)
    if bands > 3:
        extra = np.arange(photos[..., :1].size, dtype=np.float64).reshape(photos[..., :1].shape) % 997
        photos = np.concatenate([photos] + [extra.astype(dtype)] * (bands - 3), axis=-1)
    labels = np.stack([lab for _, lab in pairs])
    scenes = [f"scene{i // per_scene}" for i in range(n)]
    return photos, labels, scenes


def test_transform_gives_the_eight_symmetries():
    a = np.arange(6).reshape(2, 3)
    expected = [np.rot90(a, k) for k in range(4)] + [np.fliplr(np.rot90(a, k)) for k in range(4)]
    for t in range(8):
        np.testing.assert_array_equal(transform(a, t), expected[t])
    assert len({transform(a, t).tobytes() + bytes(transform(a, t).shape) for t in range(8)}) == 8


@pytest.mark.parametrize("dtype, bands", [(np.uint8, 3), (np.uint16, 4), (np.float32, 5)])
def test_pasted_pixels_are_exact_and_the_rest_untouched(dtype, bands):
    photos, labels, scenes = synthetic_set(6, 48, dtype, bands)
    bank = ComponentBank.build(photos[1:], labels[1:], scenes[1:], 7, min_pixels=4)
    for c in bank.components:  # each crop and mask is where it says in its source tile
        h, w = c.mask.shape
        src = c.source + 1
        np.testing.assert_array_equal(c.photo, photos[src, c.top:c.top + h, c.left:c.left + w])
        assert (labels[src, c.top:c.top + h, c.left:c.left + w][c.mask] == c.cls).all()
    target_photo, target_label = photos[0].copy(), labels[0].copy()
    rng = np.random.default_rng(3)
    out_photo, out_label, n, placements = paste(target_photo, target_label, bank, rng, n_components=6,
                                                return_placements=True)
    assert n == len(placements) == 6
    assert out_photo.dtype == dtype and out_label.dtype == np.uint8
    np.testing.assert_array_equal(target_photo, photos[0])  # inputs untouched
    np.testing.assert_array_equal(target_label, labels[0])
    # Rebuild the expected result by hand, paste by paste in order.
    want_photo, want_label = photos[0].copy(), labels[0].copy()
    for j, t, top, left in placements:
        c = bank.components[j]
        mask, crop = transform(c.mask, t), transform(c.photo, t)
        h, w = mask.shape
        want_label[top:top + h, left:left + w][mask] = c.cls
        want_photo[top:top + h, left:left + w][mask] = crop[mask]
    np.testing.assert_array_equal(out_label, want_label)
    np.testing.assert_array_equal(out_photo, want_photo)
    assert not np.array_equal(out_photo, photos[0])
    assert len({t for _, t, _, _ in placements}) > 1


def test_never_pasted_into_its_own_scene():
    photos, labels, scenes = synthetic_set(8, 32, per_scene=2)
    bank = ComponentBank.build(photos, labels, scenes, 7, min_pixels=4)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        _, _, _, placements = paste(photos[0], labels[0], bank, rng, n_components=3,
                                    exclude_scene="scene0", return_placements=True)
        seen |= {bank.components[j].scene for j, _, _, _ in placements}
    assert "scene0" not in seen and len(seen) >= 2
    # Only scene "a" has components: tiles of "a" stay as they are, the tile of "b" receives them.
    lab = np.full((3, 32, 32), 255, np.uint8)
    lab[:, 4:12, 4:12] = 1
    lab[2] = 255
    photo = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    bank = ComponentBank.build(photo, lab, ["a", "a", "b"], 2, min_pixels=4)
    assert len(bank) == 2
    out_photo, out_label = paste_batch(photo, lab, [b"a", b"a", b"b"], bank, seed=(0, 0), p=1.0,
                                       n_components=1)
    np.testing.assert_array_equal(out_label[:2], lab[:2])
    np.testing.assert_array_equal(out_photo[:2], photo[:2])
    assert (out_label[2] == 1).sum() == 64
    _, _, n = paste(photo[0], lab[0], bank, np.random.default_rng(0), exclude_scene="a")
    assert n == 0


def two_class_bank():
    """Class 0: four 10x25 blocks (1000 pixels); class 1: one 2x5 block (10 pixels); rest ignored."""
    lab = np.full((4, 32, 32), 255, np.uint8)
    for i in range(4):
        lab[i, 2:12, 3:28] = 0
    lab[3, 20:22, 10:15] = 1
    photo = np.random.default_rng(2).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    return ComponentBank.build(photo, lab, ["s0", "s1", "s2", "s3"], 2, min_pixels=4)


def test_class_probabilities_follow_rarity():
    bank = two_class_bank()
    np.testing.assert_array_equal(bank.class_pixels, [1000, 10])
    assert bank.summary()["components"] == [4, 1]
    inv = np.array([1 / 1000, 1 / 10])
    np.testing.assert_allclose(bank.class_probabilities(1.0), inv / inv.sum())
    np.testing.assert_allclose(bank.class_probabilities(0.0), [0.5, 0.5])
    sq = inv ** 0.5
    np.testing.assert_allclose(bank.class_probabilities(0.5), sq / sq.sum())
    target_photo = np.zeros((32, 32, 3), np.uint8)
    target_label = np.full((32, 32), 255, np.uint8)
    for rarity, tol in ((1.0, 0.008), (0.0, 0.04)):
        rng = np.random.default_rng(5)
        classes = []
        for _ in range(400):
            _, _, _, placements = paste(target_photo, target_label, bank, rng, n_components=10,
                                        rarity=rarity, return_placements=True)
            classes += [bank.components[j].cls for j, _, _, _ in placements]
        assert len(classes) == 4000
        freq = np.bincount(classes, minlength=2) / len(classes)
        np.testing.assert_allclose(freq, bank.class_probabilities(rarity), atol=tol)


def test_classes_without_components_are_never_drawn():
    lab = np.zeros((2, 32, 32), np.uint8)  # class 0 fills the tile: too large to be a component
    lab[:, 5:10, 5:10] = 2
    photo = np.zeros((2, 32, 32, 3), np.uint8)
    bank = ComponentBank.build(photo, lab, ["a", "b"], 3, min_pixels=4)
    np.testing.assert_array_equal(bank.class_probabilities(1.0), [0, 0, 1])
    np.testing.assert_array_equal(bank.class_probabilities(0.0), [0, 0, 1])
    empty = ComponentBank.build(photo, lab, ["a", "b"], 3, min_pixels=100)
    assert len(empty) == 0 and not empty.class_probabilities(1.0).any()
    out_photo, out_label = paste_batch(photo, lab, ["a", "b"], empty, seed=(1, 2), p=1.0)
    np.testing.assert_array_equal(out_label, lab)


def test_batches_are_deterministic_and_inputs_untouched():
    photos, labels, scenes = synthetic_set(8, 32, per_scene=1)
    bank = ComponentBank.build(photos, labels, scenes, 7, min_pixels=4)
    p0, l0 = photos.copy(), labels.copy()
    a = paste_batch(photos, labels, scenes, bank, seed=(7, 3), p=0.5)
    b = paste_batch(photos, labels, scenes, bank, seed=np.array([7, 3]), p=0.5)
    c = paste_batch(photos, labels, scenes, bank, seed=(7, 4), p=0.5)
    np.testing.assert_array_equal(photos, p0)
    np.testing.assert_array_equal(labels, l0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])
    changed = [not np.array_equal(a[1][i], labels[i]) for i in range(8)]
    assert 0 < sum(changed) < 8  # p=0.5 leaves some samples alone
    assert a[0].dtype == np.uint8 and a[1].dtype == np.uint8
    none = paste_batch(photos, labels, scenes, bank, seed=(7, 3), p=0.0)
    np.testing.assert_array_equal(none[0], photos)
    np.testing.assert_array_equal(none[1], labels)
    every = paste_batch(photos, labels, scenes, bank, seed=(7, 3), p=1.0)
    for i in range(8):
        assert not np.array_equal(every[0][i], photos[i])


def test_min_pixels_max_fraction_ignore_and_connectivity():
    lab = np.full((1, 16, 16), 255, np.uint8)  # area 256
    lab[0, 0, 0:15] = 0  # 15 pixels of class 0
    lab[0, 2, 0:4] = 1  # two class-1 blocks touching only at a corner: one component of 8
    lab[0, 3, 4:8] = 1
    lab[0, 6, 0:4] = 1  # a class-1 block cut off by an ignored row: a second component of 4
    lab[0, 8:16, 0:16] = 2  # 128 pixels = 0.5 of the tile
    photo = np.zeros((1, 16, 16, 3), np.uint8)
    bank = ComponentBank.build(photo, lab, ["a"], 3, min_pixels=4)
    found = sorted((c.cls, c.pixels) for c in bank.components)
    assert found == [(0, 15), (1, 4), (1, 8), (2, 128)]
    diag = next(c for c in bank.components if c.pixels == 8)
    assert diag.mask.shape == (2, 8) and (diag.top, diag.left) == (2, 0)
    for c in bank.components:  # an ignored pixel never belongs to a component
        h, w = c.mask.shape
        assert (lab[0, c.top:c.top + h, c.left:c.left + w][c.mask] != 255).all()
    np.testing.assert_array_equal(bank.class_pixels, [15, 12, 128])
    assert sorted((c.cls, c.pixels) for c in ComponentBank.build(photo, lab, ["a"], 3).components) == [(2, 128)]
    assert [c.pixels for c in ComponentBank.build(photo, lab, ["a"], 3, min_pixels=15).components] == [15, 128]
    lab[0, 7, 0] = 2  # 129 pixels: over half the tile
    assert 2 not in [c.cls for c in ComponentBank.build(photo, lab, ["a"], 3, min_pixels=4).components]
    only1 = ComponentBank.build(photo, lab, ["a"], 3, min_pixels=4, classes=[1])
    assert sorted(c.pixels for c in only1.components) == [4, 8]
    assert only1.summary() == {"components": [0, 2, 0], "component_pixels": [0, 12, 0],
                               "class_pixels": [15, 12, 129]}


def test_bad_labels_and_classes_raise():
    photo = np.zeros((1, 8, 8, 3), np.uint8)
    lab = np.zeros((1, 8, 8), np.uint8)
    lab[0, 0, 0] = 7
    with pytest.raises(UserError, match="label value 7"):
        ComponentBank.build(photo, lab, ["a"], 3)
    with pytest.raises(UserError, match="class 5"):
        ComponentBank.build(photo, lab * 0, ["a"], 3, classes=[5])


def test_components_too_large_for_the_target_are_skipped():
    lab = np.full((1, 32, 32), 255, np.uint8)
    lab[0, 0:4, 0:20] = 1  # 4 x 20: fits a 24 x 8 target only turned a quarter
    photo = np.ones((1, 32, 32, 3), np.uint8)
    bank = ComponentBank.build(photo, lab, ["a"], 2, min_pixels=4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, out, n, placements = paste(np.zeros((24, 8, 3), np.uint8), np.zeros((24, 8), np.uint8), bank,
                                      rng, n_components=1, return_placements=True)
        assert n == 1 and placements[0][1] % 2 == 1 and (out == 1).sum() == 80
        _, _, n = paste(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), np.uint8), bank, rng)
        assert n == 0


def test_a_bank_of_real_looking_tiles_pastes_every_class_it_holds():
    photos, labels, scenes = synthetic_set(64, 128, per_scene=4)
    bank = ComponentBank.build(photos, labels, scenes, 7)
    held = [k for k in range(7) if len(bank.by_class[k])]
    assert len(bank) > 50 and len(held) >= 5
    probs = bank.class_probabilities(1.0)
    assert all((probs[k] > 0) == (k in held) for k in range(7))


@pytest.mark.parametrize("args, option", [((1.5, 2, 1.0), "--copypaste-p"), ((-0.1, 2, 1.0), "--copypaste-p"),
                                          ((0.5, 0, 1.0), "--copypaste-n"), ((0.5, 1.5, 1.0), "--copypaste-n"),
                                          ((0.5, 2, -1.0), "--copypaste-rarity"),
                                          ((0.5, 2, float("nan")), "--copypaste-rarity")])
def test_bad_options_name_the_option(args, option):
    with pytest.raises(UserError, match=option):
        check_options(*args)


def test_good_options_pass():
    check_options(0.0, 1, 0.0)
    check_options(1, 3, 2.5)
