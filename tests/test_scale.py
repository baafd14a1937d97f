"""The scale of the training pairs, per scene, and how models label new photos at it: tiles at native
resolution or resampled by --tile-scale, small scenes mirrored instead of scaled up, whole scenes each
fitted to the window (--fit crop with a warning on what it drops, --fit pad)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from landaug.classes import IGNORE_INDEX, SPARCS
from landaug.errors import UserError
from landaug.geometry import resize_label, resize_photo
from landaug.imgio import read_image, read_label, write_image, write_label
from landaug.prepare import PrepareConfig, run
from landaug.synthetic import make_scene


def _scenes(root: Path, shapes: dict[str, tuple[int, int]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """PNG photo + palette mask pairs of the given (height, width), cut from synthetic scenes."""
    out = {}
    for i, (stem, (h, w)) in enumerate(shapes.items()):
        photo, label = make_scene(i, max(h, w))
        photo, label = photo[:h, :w], label[:h, :w]
        write_image(root / "photos" / f"{stem}.png", photo)
        write_label(root / "masks" / f"{stem}.png", label, SPARCS)
        out[stem] = photo, label
    return out


def _prepare(root: Path, out: str, **kw) -> dict:
    return run(PrepareConfig(images=root / "photos", masks=root / "masks", split="none", out=root / out,
                             progress=False, **kw))


def _pair(root: Path, out: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    cg = root / out / "images_CGAN" / "train"
    return read_image(cg / "a" / f"{stem}.png"), read_label(cg / "b" / f"{stem}.png", SPARCS, allow_ignore=True)


# --- tile mode -----------------------------------------------------------------------------------------

def test_a_scene_smaller_than_a_tile_is_mirrored_and_changes_no_scale(tmp_path):
    scenes = _scenes(tmp_path, {"big": (40, 40), "other": (48, 40), "small": (20, 24)})
    summary = _prepare(tmp_path, "out", size=32, mode="tile")
    assert summary["scale"] == 1.0 and summary["scales"] == {"big": 1.0, "other": 1.0, "small": 1.0}
    photo, label = _pair(tmp_path, "out", "small__t0_0")
    place = json.loads((tmp_path / "out/images_CGAN/tiles.json").read_text())["small__t0_0"]
    assert (place["scene_height"], place["scene_width"]) == (32, 32)
    # the scene sits in the middle at native resolution; around it its mirror image, with no label
    inside = (slice(6, 26), slice(4, 28))
    np.testing.assert_array_equal(photo[inside], scenes["small"][0])
    np.testing.assert_array_equal(label[inside], scenes["small"][1])
    np.testing.assert_array_equal(photo[5, 4:28], scenes["small"][0][0])
    np.testing.assert_array_equal(photo[6:26, 3], scenes["small"][0][:, 0])
    ignored = np.ones(label.shape, bool)
    ignored[inside] = False
    assert (label[ignored] == IGNORE_INDEX).all()


def test_tile_scale_resamples_every_scene_before_cutting_tiles(tmp_path):
    scenes = _scenes(tmp_path, {"a": (64, 64), "b": (64, 96), "c": (24, 24)})
    summary = _prepare(tmp_path, "out", size=16, mode="tile", tile_scale=0.5)
    assert (summary["scale"], summary["tile_scale"], summary["fit"]) == (0.5, 0.5, None)
    assert set(summary["scales"].values()) == {0.5}
    recorded = json.loads((tmp_path / "out/images_CGAN/config.json").read_text())
    assert recorded["config"]["tile_scale"] == 0.5 and recorded["tile_scale"] == 0.5
    tiles = sorted(p.stem for p in (tmp_path / "out/images_CGAN/train/a").iterdir())
    assert tiles == [f"a__t{r}_{c}" for r in range(2) for c in range(2)] + \
        [f"b__t{r}_{c}" for r in range(2) for c in range(3)] + ["c__t0_0"]
    # tile (1, 2) of b: the scene halved (area filter, majority vote), rows 16..32, columns 32..48
    photo, label = _pair(tmp_path, "out", "b__t1_2")
    np.testing.assert_array_equal(photo, resize_photo(scenes["b"][0], (32, 48))[16:32, 32:48])
    np.testing.assert_array_equal(label, resize_label(scenes["b"][1], (32, 48))[16:32, 32:48])
    # whole scenes (validation) stay at their own size
    assert read_image(tmp_path / "out/images_CGAN/scenes/a/b.png").shape == (64, 96, 3)


# --- resize mode ---------------------------------------------------------------------------------------

def test_scenes_of_several_sizes_record_each_fit_not_a_mean(tmp_path):
    _scenes(tmp_path, {"a": (32, 32), "b": (64, 64)})
    summary = _prepare(tmp_path, "out", size=32)
    assert summary["scales"] == {"a": 1.0, "b": 0.5}
    assert (summary["scale"], summary["fit"]) == (None, "crop")


def test_crop_says_what_it_drops_and_pad_keeps_every_pixel(tmp_path, capsys):
    scenes = _scenes(tmp_path, {"a": (32, 32), "wide": (40, 64)})
    summary = _prepare(tmp_path, "crop", size=32)
    [said] = [w for w in summary["warnings"] if w.startswith("--fit crop")]
    # 40 x 64 keeps 40 x 40: 960 of 2560 px lost, of 3584 training px; 37.5 % of that scene
    assert "1 of 2 training scenes are not square" in said and "drops 26.8% of the training pixels" in said
    assert "up to 37.5%, scene wide" in said and said in capsys.readouterr().err
    summary = _prepare(tmp_path, "pad", size=32, fit="pad")
    assert summary["scales"] == {"a": 1.0, "wide": 0.5} and summary["fit"] == "pad"
    assert not [w for w in summary["warnings"] if w.startswith("--fit")]
    photo, label = _pair(tmp_path, "pad", "wide")
    # 40 rows mirrored to 64 (12 above, 12 below), halved: rows 6..26 hold the scene, the rest is ignored
    np.testing.assert_array_equal(label[6:26], resize_label(scenes["wide"][1], (20, 32)))
    assert (label[:6] == IGNORE_INDEX).all() and (label[26:] == IGNORE_INDEX).all()
    assert photo[:6].std() > 0


@pytest.mark.parametrize("kw, says", [
    (dict(mode="resize", tile_scale=0.5), "--tile-scale resamples scenes before they are cut into tiles"),
    (dict(mode="tile", tile_scale=0.0), "--tile-scale must be in (0, 1]"),
    (dict(mode="tile", tile_scale=2.0), "--tile-scale must be in (0, 1]"),
    (dict(mode="tile", fit="pad"), "--fit pad fits whole scenes to the window: it needs --mode resize"),
])
def test_geometry_options_are_checked_before_any_work(tmp_path, kw, says):
    with pytest.raises(UserError) as e:
        run(PrepareConfig(demo=3, size=16, out=tmp_path / "out", progress=False, **kw))
    assert says in str(e.value) and not (tmp_path / "out").exists()


def test_pipeline_passes_the_geometry_options_and_counts_their_tiles(tmp_path):
    from landaug.pipeline import build_parser, config_from_args, validate
    from landaug.pipeline.inputs import prepare_config

    argv = ["--demo", "--arms", "baseline", "--demo-scenes", "6", "--demo-size", "64", "--size", "16",
            "--data-mode", "tile", "--tile-scale", "0.5", "--cgan-batch", "15", "--out", str(tmp_path / "run")]
    cfg = config_from_args(build_parser().parse_args(argv), argv)
    assert (prepare_config(cfg).tile_scale, prepare_config(cfg).fit) == (0.5, "crop")
    # 5 training scenes halved to 32 px: 4 tiles each, 16 for a seed after one validation scene
    validate(cfg)
    argv[argv.index("15")] = "17"
    with pytest.raises(UserError, match="--cgan-batch 17 is larger than the 16 training pairs"):
        validate(config_from_args(build_parser().parse_args(argv), argv))
    argv = ["--demo", "--data-mode", "resize", "--tile-scale", "0.5", "--out", str(tmp_path / "r2")]
    with pytest.raises(UserError, match="it needs --data-mode tile"):
        validate(config_from_args(build_parser().parse_args(argv), argv))


# --- models label each photo at the scale of their pairs -------------------------------------------------

@pytest.mark.slow
def test_models_record_and_use_the_scale_or_fit_of_their_pairs(tmp_path):
    from landaug import cgan
    from landaug.cgan.infer import SceneLabeller

    _scenes(tmp_path, {"a": (64, 64), "b": (64, 64), "c": (32, 32), "d": (64, 48), "t": (40, 56)})
    small = dict(steps=1, batch=2, width=0.125, val_fraction=0.25, sample_every=0, progress=False, verbose=False)
    _prepare(tmp_path, "tiles", size=16, mode="tile", tile_scale=0.5)
    cgan.train(cgan.TrainConfig(data=tmp_path / "tiles/images_CGAN", out=tmp_path / "mt", **small))
    desc = json.loads((tmp_path / "mt/model.json").read_text())
    assert (desc["scale"], desc["fit"]) == (0.5, None)
    _prepare(tmp_path, "whole", size=16)
    cgan.train(cgan.TrainConfig(data=tmp_path / "whole/images_CGAN", out=tmp_path / "mw", **small))
    desc = json.loads((tmp_path / "mw/model.json").read_text())
    assert (desc["scale"], desc["fit"]) == (None, "crop")
    fitted = SceneLabeller.load(tmp_path / "mw")
    assert (fitted.scale_for(64, 64), fitted.scale_for(32, 32), fitted.scale_for(40, 56)) == (0.25, 0.5, 0.4)
    assert SceneLabeller.load(tmp_path / "mt").scale_for(40, 56) == 0.5
    written = cgan.predict(tmp_path / "mw", tmp_path / "photos", tmp_path / "pred", progress=False)
    assert [read_label(p, SPARCS).shape for p in written] == [(64, 64), (64, 64), (32, 32), (64, 48), (40, 56)]
    assert json.loads((tmp_path / "pred/config.json").read_text())["fit"] == "crop"
