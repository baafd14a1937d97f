"""A data set of one's own, the way such sets come: tile sub-folders with repeated file names, RGB and palette
masks, a Supervisely classes.json whose colours are not the masks', unlabelled grey and black pixels; stage 1
and the pipeline read it, refuse what cannot be read for sure, and keep a folder's scenes in one split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from landaug import pipeline
from landaug.cgan.data import plan_split
from landaug.classes import IGNORE_INDEX, load_registry
from landaug.errors import UserError, cli_main
from landaug.geometry import scene_of
from landaug.imgio import read_label
from landaug.prepare import PrepareConfig, run
from landaug.split import draw_split, val_scenes

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["Water", "Land", "Road", "Building", "Vegetation"]   # the file's order, Unlabeled ignored


def _prepare(aerial, out, **kw) -> dict:
    return run(PrepareConfig(images=Path(f"{aerial.root}/*/images"), masks=Path(f"{aerial.root}/*/masks"),
                             classes=aerial.root / "classes.json", size=32, out=out, progress=False, **kw))


def _class_of(aerial, t, k) -> np.ndarray:
    """The expected label map of one mask: the file's classes in order, Unlabeled and black unlabelled."""
    names = aerial.labels[t, k]
    out = np.full(names.shape, IGNORE_INDEX, np.uint8)
    for i, n in enumerate(CLASSES):
        out[names == n] = i
    return out


def test_the_first_run_lists_every_colour_that_is_no_class_and_writes_nothing(aerial, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError) as e:
        _prepare(aerial, out)
    line = e.value.line()
    assert line.startswith(f"{aerial.root}/*/masks: mask colours that are no class: ")
    # the masks' water, 20 units from the declared land, is refused like every other colour
    assert "(226, 169, 41) 4096 px in 12 masks, nearest Land (238, 185, 41) at 20.0" in line
    assert "(0, 0, 0) 480 px in 6 masks" in line and "(132, 41, 246)" in line and "12 masks read" in line
    assert not out.exists()


def test_sub_folders_pair_by_folder_and_stem_with_supervisely_classes(aerial, tmp_path):
    aerial.write_classes(aerial.fixed())
    out = tmp_path / "out"
    summary = _prepare(aerial, out, ignore_class=("Unlabeled",), split="none")
    scenes = [f"Tile_{t}--image_part_00{k}" for t in range(1, 5) for k in range(1, 4)]
    assert summary["train_scenes"] == scenes and all(scene_of(s) == s for s in scenes)
    reg = load_registry(out / "images_CGAN" / "classes.json")
    assert reg.names == CLASSES and set(reg.ignore_colors) == {(0, 0, 0), (155, 155, 155)}
    for t, k in ((1, 2), (2, 2), (4, 3)):     # RGB masks in odd tiles, palettes of their own in even ones
        label = read_label(out / "images_CGAN" / "scenes" / "b" / f"Tile_{t}--image_part_00{k}.png", reg,
                           allow_ignore=True)
        np.testing.assert_array_equal(label, _class_of(aerial, t, k))


def test_a_folder_searched_with_its_sub_folders(aerial, tmp_path):
    """photos/<tile>/x.jpg + masks/<tile>/x.png: the same pairing, without a glob; a stem starting with t
    cannot make the tile separator."""
    aerial.write_classes(aerial.fixed())
    for sub in ("images", "masks"):
        for t in (1, 2):
            (tmp_path / sub / f"T {t}").mkdir(parents=True)
            for p in (aerial.root / f"Tile {t}" / sub).iterdir():
                p.rename(tmp_path / sub / f"T {t}" / p.name.replace("image_", "tile_"))
    summary = run(PrepareConfig(images=tmp_path / "images", masks=tmp_path / "masks", size=32, split="none",
                                classes=aerial.root / "classes.json", out=tmp_path / "out", progress=False))
    assert summary["train_scenes"][:2] == ["T_1--tile_part_001", "T_1--tile_part_002"]
    assert all(scene_of(s) == s for s in summary["train_scenes"])


def test_group_by_folder_tests_whole_folders_and_records_them(aerial, tmp_path):
    aerial.write_classes(aerial.fixed())
    out = tmp_path / "out"
    summary = _prepare(aerial, out, ignore_class=("Unlabeled",), group_by="folder", test_fraction=0.3)
    tested = {s.split("--")[0] for s in summary["test_scenes"]}
    trained = {s.split("--")[0] for s in summary["train_scenes"]}
    assert len(summary["test_scenes"]) == 3 * len(tested) and not tested & trained
    groups = json.loads((out / "images_CGAN" / "groups.json").read_text())["groups"]
    assert groups["Tile_2"] == [f"Tile_2--image_part_00{k}" for k in (1, 2, 3)]
    # each seed's validation draw keeps a folder together as well, and so does cgan.py train's own hold-out
    by_scene = {s: g for g, ss in groups.items() for s in ss}
    for seed in range(4):
        split = draw_split(summary["train_scenes"], summary["test_scenes"], 0.3, seed, by_scene)
        assert not {by_scene[s] for s in split["val"]} & {by_scene[s] for s in split["train"]}
        _, train_sc, val_sc = plan_split(SimpleNamespace(data=out / "images_CGAN", split=None, val_fraction=0.3,
                                                         seed=seed))
        assert len(val_sc) == 3 and not {by_scene[s] for s in val_sc} & {by_scene[s] for s in train_sc}
    # a test list that splits a folder is refused
    (tmp_path / "test.txt").write_text("Tile_1--image_part_001\n")
    with pytest.raises(UserError, match="names Tile_1--image_part_001 but not Tile_1--image_part_002 of the same "
                                        "folder"):
        _prepare(aerial, tmp_path / "o2", ignore_class=("Unlabeled",), group_by="folder",
                 test_list=tmp_path / "test.txt")


def test_validation_groups_without_a_group_file_stay_scenes():
    scenes = [f"s{i}" for i in range(10)]
    assert val_scenes(scenes, 0.2, 0) == val_scenes(scenes, 0.2, 0, None)
    groups = {s: f"g{i // 5}" for i, s in enumerate(scenes)}
    assert val_scenes(scenes, 0.2, 0, groups) in (scenes[:5], scenes[5:])
    with pytest.raises(UserError, match="needs at least 2 folders"):
        val_scenes(scenes, 0.2, 0, {s: "one" for s in scenes})


@pytest.mark.parametrize("images, masks, needle", [
    ("{root}/*/image", "{root}/*/masks", "the glob of --images matches no folder"),
    ("{root}", "{root}", "is found by both --images"),
    ("{root}/Tile 1/masks/none*", "{root}/*/masks", "matches no folder"),
])
def test_inputs_that_find_nothing_or_the_same_files(aerial, tmp_path, images, masks, needle):
    with pytest.raises(UserError, match=needle):
        run(PrepareConfig(images=Path(images.format(root=aerial.root)), masks=Path(masks.format(root=aerial.root)),
                          out=tmp_path / "out", progress=False))
    assert not (tmp_path / "out").exists()


def test_an_empty_folder_match_names_the_folders_searched(tmp_path):
    for t in (1, 2):
        (tmp_path / f"Tile {t}" / "images").mkdir(parents=True)
    with pytest.raises(UserError) as e:
        run(PrepareConfig(images=Path(f"{tmp_path}/*/images"), out=tmp_path / "out", progress=False))
    assert (f"no images (png, jpg, tif) for --images in {tmp_path}/Tile 1/images, {tmp_path}/Tile 2/images or their "
            "sub-folders") in e.value.line()


def test_a_truncated_photo_stops_stage_1_before_any_folder_is_made(aerial, tmp_path):
    aerial.write_classes(aerial.fixed())
    photo = aerial.root / "Tile 3" / "images" / "image_part_002.jpg"
    photo.write_bytes(photo.read_bytes()[:700])
    with pytest.raises(UserError, match="image_part_002.jpg: unreadable or truncated image"):
        _prepare(aerial, tmp_path / "new" / "out", ignore_class=("Unlabeled",))
    assert not (tmp_path / "new").exists()


def test_stage_1_colour_tolerance_reports_a_class_that_took_two_colours(tmp_path, capsys):
    from PIL import Image

    for sub in ("p", "m"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "p" / f"s{i}.png")
        mask = np.zeros((16, 16, 3), np.uint8)
        mask[:] = (238, 185, 41)
        mask[:, :4] = (226, 169, 41)       # the masks' water, which the file forgot
        mask[:, 12:] = (0, 0, 255)
        Image.fromarray(mask).save(tmp_path / "m" / f"s{i}.png")
    (tmp_path / "classes.json").write_text(json.dumps([{"index": 0, "name": "Land", "color": [238, 185, 41]},
                                                       {"index": 1, "name": "Sea", "color": [0, 0, 255]}]))
    cfg = dict(images=tmp_path / "p", masks=tmp_path / "m", classes=tmp_path / "classes.json", size=16,
               progress=False)
    with pytest.raises(UserError, match=r"\(226, 169, 41\) 192 px in 3 masks, nearest Land \(238, 185, 41\) at 20.0"):
        run(PrepareConfig(**cfg, out=tmp_path / "o1"))
    summary = run(PrepareConfig(**cfg, colour_tolerance=24, out=tmp_path / "o2"))
    err = capsys.readouterr().err
    assert ("warning: --colour-tolerance 24 took 2 different mask colours as Land: (238, 185, 41) 384 px exact, "
            "(226, 169, 41) 192 px at 20.0") in err
    assert any("took 2 different mask colours as Land" in w for w in summary["warnings"])


def test_help_says_what_classes_json_looks_like():
    proc = subprocess.run([sys.executable, str(ROOT / "resize_to_256.py"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for needle in ('{"index": 0, "name": "water", "color": [r, g, b]}', 'Supervisely\'s {"classes": [{"title": ',
                   "--ignore-class NAME", "--colour-tolerance N", "--group-by", '"data/*/images"'):
        assert needle in proc.stdout, needle
    assert "Supervisely" in pipeline.build_parser().format_help()


# --- the pipeline checks every photo and mask before its run folder exists -----------------------------

TINY = ["--arms", "baseline", "--size", "32", "--data-mode", "resize", "--cgan-steps", "4", "--evaluations", "2",
        "--cgan-batch", "4", "--cgan-width", "0.125", "--quiet"]


def _own(aerial, out) -> list[str]:
    return ["--images", f"{aerial.root}/*/images", "--masks", f"{aerial.root}/*/masks", "--classes",
            str(aerial.root / "classes.json"), "--ignore-class", "Unlabeled", "--group-by", "folder",
            "--out", str(out), *TINY]


def test_pipeline_refuses_mask_colours_and_bad_photos_before_making_the_run_folder(aerial, tmp_path, capsys):
    out = tmp_path / "runs" / "a"
    assert cli_main(pipeline.main, _own(aerial, out), prog="pipeline.py") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nearest Land (238, 185, 41) at 20.0" in err
    assert not (tmp_path / "runs").exists()
    aerial.write_classes(aerial.fixed())
    photo = aerial.root / "Tile 2" / "images" / "image_part_003.jpg"
    good = photo.read_bytes()
    photo.write_bytes(good[:700])
    assert cli_main(pipeline.main, _own(aerial, out), prog="pipeline.py") == 2
    assert "image_part_003.jpg: unreadable or truncated image" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    photo.write_bytes(good)
    argv = _own(aerial, out)
    pipeline.validate(pipeline.config_from_args(pipeline.build_parser().parse_args(argv), argv))


@pytest.mark.slow
def test_pipeline_on_sub_folders_with_unlabelled_classes_reaches_the_summary(aerial, tmp_path, capsys):
    aerial.write_classes(aerial.fixed())
    out = tmp_path / "run"
    assert cli_main(pipeline.main, _own(aerial, out), prog="pipeline.py") == 0, capsys.readouterr().err[-3000:]
    log = (out / "logs" / "seed0" / "baseline.log").read_text()
    assert "seed 1/1 · arm baseline: step 2/4, validation mIoU " in log
    assert "seed 1/1 · arm baseline: step 4/4, validation mIoU " in log
    summary = (out / "summary.md").read_text()
    assert f"photos `{aerial.root}/*/images`, masks `{aerial.root}/*/masks`" in summary
    rows = {line.split("|")[1].strip() for line in summary.splitlines() if line.startswith("| ")}
    assert set(CLASSES) <= rows and "Unlabeled" not in rows and "ignore" not in rows
    report = json.loads((out / "eval_report" / "report.json").read_text())
    assert [c["name"] for c in report["classes"]] == CLASSES and report["ignore_colors"]
    assert (out / "eval_report" / "scenes.png").is_file()
    split = json.loads((out / "seed0" / "split.json").read_text())
    folders = {part: {s.split("--")[0] for s in split[part]} for part in ("train", "val", "test")}
    assert len(folders["val"]) == len(folders["test"]) == 1 and len(folders["train"]) == 2
    assert len(split["val"]) == len(split["test"]) == 3
    # --resume redoes the evaluation the same way
    (out / ".stages" / "eval.json").unlink()
    (out / "eval_report" / "report.json").unlink()
    assert cli_main(pipeline.main, ["--resume", "--out", str(out), "--quiet"], prog="pipeline.py") == 0
    assert (out / ".stages" / "eval.json").is_file() and (out / "eval_report" / "report.json").is_file()
