"""Stage 1: geometry, split logic, synthetic scenes, outputs, bad input, and a SPARCS integration run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landaug.classes import SPARCS
from landaug.errors import UserError
from landaug.imgio import read_label, write_image, write_label
from landaug.geometry import center_square, resize_label, resize_photo, scene_of, tile_starts
from landaug.prepare import PrepareConfig, choose_test, run
from landaug.synthetic import make_scene, make_scenes

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "resize_to_256.py"), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True)


def blocky_label(rng, size, block):
    small = rng.integers(0, 7, (size // block, size // block)).astype(np.uint8)
    return np.kron(small, np.ones((block, block), np.uint8))


# --- geometry ---

def test_resized_labels_hold_only_class_values_and_keep_fractions(rng):
    label = make_scene(3, 250)[1]
    for how in ("majority", "nearest"):
        small = resize_label(label, 64, how)
        assert small.shape == (64, 64) and set(np.unique(small)) <= set(np.unique(label))
        before = np.bincount(label.ravel(), minlength=7) / label.size
        after = np.bincount(small.ravel(), minlength=7) / small.size
        assert np.abs(before - after).max() < 0.03, (how, before, after)


def test_majority_vote_is_exact_on_aligned_blocks(rng):
    label = blocky_label(rng, 64, 4)
    assert np.array_equal(resize_label(label, 16), label[::4, ::4])


def test_photo_resize_is_antialiased():
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    photo = np.repeat(checker[..., None], 3, axis=2)
    small = resize_photo(photo, 16)
    assert np.abs(small.astype(int) - 127).max() <= 2  # a box filter averages the checkerboard to grey


def test_tiles_cover_the_scene_evenly():
    assert tile_starts(1000, 256) == [0, 248, 496, 744]
    assert tile_starts(256, 256) == [0]
    assert tile_starts(300, 256) == [0, 44]
    for length in (257, 511, 1000, 1023):
        starts = tile_starts(length, 256)
        assert starts[0] == 0 and starts[-1] + 256 == length
        assert all(b - a <= 256 for a, b in zip(starts, starts[1:]))


def test_center_square_crops_non_square_scenes():
    ys, xs = center_square((100, 160))
    assert (ys.start, ys.stop, xs.start, xs.stop) == (0, 100, 30, 130)


# --- split ---

def test_random_split_is_seeded_and_keeps_one_test_scene():
    stems = [f"s{i}" for i in range(20)]
    cfg = PrepareConfig(demo=20, seed=1)
    test, _ = choose_test(stems, cfg)
    assert len(test) == 2 and test == choose_test(stems, PrepareConfig(demo=20, seed=1))[0]
    assert test != choose_test(stems, PrepareConfig(demo=20, seed=2))[0]
    assert len(choose_test(stems[:3], cfg)[0]) == 1


def test_paper_split_reports_missing_scenes():
    stems = ["LC80010812013365LGN00_18", "other"]
    test, missing = choose_test(stems, PrepareConfig(sparcs=Path("x")))
    assert test == {"LC80010812013365LGN00_18"} and len(missing) == 7


def test_scene_of_groups_tiles():
    assert scene_of("LC8_12__t2_3") == "LC8_12" and scene_of("plain") == "plain"


# --- synthetic scenes ---

def test_synthetic_scenes_are_deterministic_and_cover_all_classes():
    scenes = list(make_scenes(40, 256, seed=0))
    a = list(make_scenes(2, 64, seed=5))
    b = list(make_scenes(2, 64, seed=5))
    assert all(np.array_equal(x[1], y[1]) and np.array_equal(x[2], y[2]) for x, y in zip(a, b))
    counts = sum(np.bincount(l.ravel(), minlength=7) for _, _, l in scenes)
    assert (counts > 0).all() and counts.argmax() == 4  # land dominates, as in SPARCS
    photo, label = scenes[0][1:]
    assert photo.dtype == np.uint8 and photo.shape == (256, 256, 3) and label.shape == (256, 256)


def test_synthetic_cloud_shadows_are_darker_than_land():
    photos, labels = zip(*[s[1:] for s in make_scenes(10, 128, seed=0)])
    photo, label = np.stack(photos).mean(-1), np.stack(labels)
    assert photo[label == 0].mean() < 0.6 * photo[label == 4].mean()
    assert photo[label == 5].mean() > photo[label == 4].mean()


# --- outputs ---

def test_demo_writes_the_hand_off_layout(tmp_path):
    summary = run(PrepareConfig(demo=10, size=32, out=tmp_path, progress=False))
    train = sorted(p.name for p in (tmp_path / "images_CGAN/train/a").iterdir())
    test = sorted(p.name for p in (tmp_path / "images_CGAN/test/a").iterdir())
    assert len(train) == 9 and len(test) == 1
    assert train == sorted(p.name for p in (tmp_path / "images_CGAN/train/b").iterdir())
    assert train == sorted(p.name for p in (tmp_path / "images").glob("*.png"))
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["bands.json", *train]
    assert Image.open(tmp_path / "images_CGAN/train/b" / train[0]).mode == "P"
    cfg = json.loads((tmp_path / "images_CGAN/config.json").read_text())
    assert cfg["test_scenes"] == summary["test_scenes"] and cfg["config"]["size"] == 32
    assert json.loads((tmp_path / "images_CGAN/classes.json").read_text())[6]["name"] == "flooded"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_refuses_to_mix_into_an_existing_output_then_overwrites(tmp_path):
    run(PrepareConfig(demo=4, size=32, out=tmp_path, progress=False))
    with pytest.raises(UserError, match="already holds images"):
        run(PrepareConfig(demo=6, size=32, out=tmp_path, progress=False))
    run(PrepareConfig(demo=6, size=32, out=tmp_path, seed=3, progress=False, overwrite=True))
    assert len(list((tmp_path / "images_CGAN/train/a").iterdir())) == 5
    assert all(p.name.startswith("synth0003") for p in (tmp_path / "images").glob("*.png"))


def _user_pairs(tmp_path, rng, n=4, size=40):
    (tmp_path / "img").mkdir(), (tmp_path / "msk").mkdir()
    for i in range(n):
        write_image(tmp_path / "img" / f"s{i}.jpg", rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8))
        write_label(tmp_path / "msk" / f"s{i}.png", blocky_label(rng, 48, 8)[:size, : size + 8], SPARCS)
    return tmp_path / "img", tmp_path / "msk"


def test_user_pairs_with_test_list_and_tiles(tmp_path, rng):
    img, msk = _user_pairs(tmp_path, rng)
    (tmp_path / "test.txt").write_text("# held out\ns1.png\nnot_there\n")
    out = tmp_path / "out"
    summary = run(PrepareConfig(images=img, masks=msk, test_list=tmp_path / "test.txt", size=16, mode="tile",
                                out=out, progress=False))
    assert summary["test_scenes"] == ["s1"] and summary["missing_test_scenes"] == ["not_there"]
    # Test scenes stay whole at their own size; training scenes are tiled, and also kept whole for validation.
    assert [p.name for p in (out / "images_CGAN/test/b").iterdir()] == ["s1.png"]
    assert read_label(out / "images_CGAN/test/b/s1.png", SPARCS).shape == (40, 48)
    tiles = sorted(p.stem for p in (out / "images_CGAN/train/b").iterdir())
    assert tiles == [f"s{i}__t{r}_{c}" for i in (0, 2, 3) for r in range(3) for c in range(3)]
    assert sorted(p.name for p in (out / "images_CGAN/scenes/b").iterdir()) == ["s0.png", "s2.png", "s3.png"]
    places = json.loads((out / "images_CGAN/tiles.json").read_text())
    whole = read_label(out / "images_CGAN/scenes/b/s2.png", SPARCS)
    for stem in tiles:
        t = places[stem]
        tile = read_label(out / "images_CGAN/train/b" / f"{stem}.png", SPARCS)
        assert tile.shape == (16, 16) and (t["scene_height"], t["scene_width"]) == (40, 48)
        if t["scene"] == "s2":
            np.testing.assert_array_equal(tile, whole[t["top"]:t["top"] + 16, t["left"]:t["left"] + 16])
    assert json.loads((out / "images_CGAN/config.json").read_text())["scale"] == 1.0


def test_unlabelled_images_write_only_images(tmp_path, rng):
    img, _ = _user_pairs(tmp_path, rng, n=2)
    run(PrepareConfig(images=img, size=16, out=tmp_path / "out", progress=False))
    assert len(list((tmp_path / "out/images").glob("*.png"))) == 2
    assert (tmp_path / "out/images/config.json").is_file()
    assert not (tmp_path / "out/images_CGAN").exists()


# --- bad input: exit code 2, one line naming the file, nothing written ---

def _assert_clean_failure(proc, needle, out: Path):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists() or not any(p for p in out.rglob("*") if p.is_file()), list(out.rglob("*"))


def test_bad_inputs_fail_cleanly(tmp_path, rng):
    img, msk = _user_pairs(tmp_path, rng, n=3)
    out = tmp_path / "out"
    _assert_clean_failure(cli("--images", tmp_path / "nope", "--masks", msk, "--out", out), "nope", out)
    (tmp_path / "empty").mkdir()
    _assert_clean_failure(cli("--images", tmp_path / "empty", "--out", out), "no images", out)
    (img / "s0.jpg").rename(tmp_path / "s0.jpg")
    _assert_clean_failure(cli("--images", img, "--masks", msk, "--out", out), "s0.png: mask has no photo", out)
    (tmp_path / "s0.jpg").rename(img / "s0.jpg")
    (msk / "s2.png").rename(tmp_path / "s2.png")
    _assert_clean_failure(cli("--images", img, "--masks", msk, "--out", out), "s2.jpg: photo has no mask", out)
    write_label(msk / "s2.png", np.zeros((10, 10), np.uint8), SPARCS)
    _assert_clean_failure(cli("--images", img, "--masks", msk, "--out", out), "s2.png: mask is (10, 10)", out)
    write_label(msk / "s2.png", np.full((40, 48), 9, np.uint8), SPARCS)
    _assert_clean_failure(cli("--images", img, "--masks", msk, "--out", out), "s2.png: mask values", out)
    red = np.zeros((40, 48, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(msk / "s2.png")
    _assert_clean_failure(cli("--images", img, "--masks", msk, "--out", out), "colours that are no class", out)
    (msk / "s2.png").write_bytes((msk / "s1.png").read_bytes()[:60])
    _assert_clean_failure(cli("--images", img, "--masks", msk, "--out", out), "s2.png", out)
    _assert_clean_failure(cli("--demo", 3, "--size", 48, "--out", out), "power of two", out)


def test_sparcs_layout_errors(tmp_path, rng):
    (tmp_path / "sp").mkdir()
    write_image(tmp_path / "sp" / "A_photo.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    (tmp_path / "sp" / "A_mtl.txt").write_text("ignored")
    out = tmp_path / "out"
    _assert_clean_failure(cli("--sparcs", tmp_path / "sp", "--out", out), "A_photo.png: photo has no mask", out)
    (tmp_path / "sp2").mkdir()
    _assert_clean_failure(cli("--sparcs", tmp_path / "sp2", "--out", out), "no SPARCS scenes", out)


def test_help_lists_the_inputs():
    proc = cli("--help")
    assert proc.returncode == 0 and "--sparcs" in proc.stdout and "--mode" in proc.stdout


# --- real data ---

def test_sparcs_integration(sparcs_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for photo in sorted(sparcs_dir.glob("*_photo.png"))[:3]:
        scene = photo.name[: -len("_photo.png")]
        (src / photo.name).symlink_to(photo)
        (src / f"{scene}_mask.png").symlink_to(sparcs_dir / f"{scene}_mask.png")
    (tmp_path / "test.txt").write_text(scene + "\n")
    proc = cli("--sparcs", src, "--test-list", tmp_path / "test.txt", "--size", 64, "--out", tmp_path / "out", "--quiet")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out/images_CGAN"
    assert [p.name for p in (out / "test/b").iterdir()] == [f"{scene}.png"]
    assert len(list((out / "train/b").iterdir())) == 2
    truth = np.asarray(Image.open(sparcs_dir / f"{scene}_mask.png"))
    small = read_label(out / "test/b" / f"{scene}.png", SPARCS)
    before = np.bincount(truth.ravel(), minlength=7) / truth.size
    after = np.bincount(small.ravel(), minlength=7) / small.size
    assert np.abs(before - after).max() < 0.05


def test_sparcs_paper_split_says_no_test_scenes(sparcs_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted(sparcs_dir.glob("*_photo.png"))[:2]:
        (src / p.name).symlink_to(p)
        (src / p.name.replace("_photo", "_mask")).symlink_to(sparcs_dir / p.name.replace("_photo", "_mask"))
    proc = cli("--sparcs", src, "--size", 32, "--out", tmp_path / "out", "--quiet")
    assert proc.returncode == 0 and "8 test scene(s) of the paper split are not in the input" in proc.stderr
    assert "images_CGAN/test stays empty" in proc.stderr
    assert sorted(p.stem for p in (tmp_path / "out/images").glob("*.png")) == sorted(
        p.name[: -len("_photo.png")] for p in src.glob("*_photo.png"))
