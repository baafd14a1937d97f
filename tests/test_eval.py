"""eval.py end to end on small synthetic masks: outputs, numbers, multi-run sets, several references,
tiled scenes (with and without tiles.json), warnings and every bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm

from landaug import metrics as M
from landaug.classes import IGNORE_INDEX, SPARCS, ClassInfo, ClassRegistry
from landaug.errors import UserError, cli_main
from landaug.evaluate import EvalConfig, evaluate_sets, main, owned_windows, parse_pred_specs, run
from landaug.evaluate.figures import scene_image
from landaug.evaluate.plan import Tile, plan_evaluation
from landaug.imgio import read_label, write_image, write_label

ROOT = Path(__file__).resolve().parents[1]
SIZE = 24
STEMS = ["scene_a", "scene_b", "scene_c", "scene_d"]
OUTPUTS = ["report.json", "report.md", "config.json", "per_class_iou.png", "confusion_before.png",
           "confusion_after.png", "scenes.png"]

TINY = ClassRegistry((ClassInfo(0, "sea", (0, 0, 255)), ClassInfo(1, "forest", (0, 128, 0)),
                      ClassInfo(2, "town", (200, 0, 0)), ClassInfo(3, "ice", (255, 255, 255))))


def _noisy(rng, truth, noise, n_classes):
    pred = truth.copy()
    pred[pred == IGNORE_INDEX] = 0
    flip = rng.random(truth.shape) < noise
    pred[flip] = rng.integers(0, n_classes, int(flip.sum()))
    return pred


def _make_data(root: Path, registry=SPARCS, seeds=1, stems=STEMS) -> dict:
    """truth/, photos/, runs/seed*/{before,after}/ with before noisier than after."""
    rng = np.random.default_rng(0)
    n = len(registry)
    truths = {}
    for stem in stems:
        t = rng.integers(0, n - 1, (SIZE, SIZE)).astype(np.uint8)   # the last class never in the truth
        t[:3, :3] = IGNORE_INDEX
        truths[stem] = t
        write_label(root / "truth" / f"{stem}.png", t, registry)
        write_image(root / "photos" / f"{stem}.png", rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    preds = {}
    for s in range(seeds):
        for name, noise in (("before", 0.6), ("after", 0.25)):
            for stem in stems:
                p = _noisy(rng, truths[stem], noise, n)
                preds[s, name, stem] = p
                write_label(root / "runs" / f"seed{s}" / name / f"{stem}.png", p, registry)
    return {"truth": truths, "pred": preds}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    arrays = _make_data(root, seeds=3)
    return root, arrays


def _read(path):
    return read_label(path, SPARCS, allow_ignore=True)


def _pooled_sklearn(truths, preds, n):
    t = np.concatenate([truths[s].ravel() for s in STEMS])
    p = np.concatenate([preds[s].ravel() for s in STEMS])
    keep = t != IGNORE_INDEX
    return t[keep].astype(int), p[keep].astype(int)


def test_cli_writes_every_output_with_correct_numbers(data, tmp_path):
    root, arrays = data
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "eval.py", "--truth", root / "truth",
                        "--pred", f"before={root / 'runs/seed0/before'}",
                        "--pred", f"after={root / 'runs/seed0/after'}",
                        "--images", root / "photos", "--out", out, "--scenes", "2", "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    # no classes.json near the truth: SPARCS, said once on stderr with the way out
    assert r.stderr.splitlines() == [f"warning: no classes.json in {root / 'truth'} or the two folders above "
                                     "it: the built-in SPARCS classes are used (pass --classes FILE for other "
                                     "classes)"]
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    for name in OUTPUTS[3:]:
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] > 100
    rep = json.loads((out / "report.json").read_text())
    assert [c["name"] for c in rep["classes"]] == SPARCS.names
    assert list(rep["sets"]) == ["before", "after"]
    for name in ("before", "after"):
        s = rep["sets"][name]
        y_true, y_pred = _pooled_sklearn(arrays["truth"], {k: arrays["pred"][0, name, k] for k in STEMS}, 7)
        np.testing.assert_array_equal(s["confusion_matrix"],
                                      skm.confusion_matrix(y_true, y_pred, labels=list(range(7))))
        assert s["n_images"] == 4 and s["n_runs"] == 1 and s["mean_iou_std"] is None
        assert s["n_pixels"] == 4 * (SIZE * SIZE - 9) and s["n_ignored_pixels"] == 4 * 9
        assert s["overall_accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), rel=1e-12)
        assert s["kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred), rel=1e-10)
        present = sorted(set(y_true) | set(y_pred))
        assert s["mean_iou"] == pytest.approx(
            skm.jaccard_score(y_true, y_pred, labels=present, average="macro"), rel=1e-12)
        assert set(s["per_class"]["land"]) >= {"iou", "precision", "recall", "f1", "support"}
        assert s["per_class"]["flooded"]["support"] == 0
        assert set(s["per_scene"]) == set(STEMS)
        t, p = arrays["truth"]["scene_b"], arrays["pred"][0, name, "scene_b"]
        assert s["per_scene"]["scene_b"]["mean_iou"] == pytest.approx(M.mean_iou(M.confusion_matrix(t, p, 7)))
        assert s["per_scene"]["scene_b"]["euclidean_distance"] == pytest.approx(
            M.pixel_color_distance(t, p, SPARCS.colors))
        assert s["euclidean"]["mean_distance"] == pytest.approx(np.mean(
            [M.pixel_color_distance(arrays["truth"][k], arrays["pred"][0, name, k], SPARCS.colors) for k in STEMS]))
    comp = rep["comparisons"]["after vs before"]
    assert comp["mean_iou_delta"] == pytest.approx(rep["sets"]["after"]["mean_iou"] - rep["sets"]["before"]["mean_iou"])
    lo, hi = comp["mean_iou_delta_ci95"]
    assert lo <= comp["mean_iou_delta"] <= hi and lo > 0
    assert comp["images_improved"] == 4 and comp["euclidean_improved_share"] == 1.0
    assert set(comp["per_class_iou_delta"]) == set(SPARCS.names)
    md = (out / "report.md").read_text()
    for fig in OUTPUTS[3:]:
        assert f"]({fig})" in md
    assert "Euclidean" in md and "after vs before" in md and rep["meta"]["bootstrap"]["method"] in md
    assert "share of bootstrap resamples in which the set is better than the reference (not a p-value)" in md
    assert comp["share_improved_note"] == rep["meta"]["bootstrap"]["share_improved"]
    assert comp["mean_iou_share_improved"] == 1.0 and "p_improved" not in json.dumps(rep)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["stage"] == "eval" and cfg["config"]["scenes"] == 2
    assert rep["meta"]["scenes_shown"] and len(rep["meta"]["scenes_shown"]) == 2


def test_glob_runs_give_mean_and_std(data, tmp_path):
    root, arrays = data
    rep = evaluate_sets(root / "truth", {"before": [root / "runs/seed0/before"]}
                        | parse_pred_specs([f"after={root}/runs/seed*/after"]), SPARCS, out=tmp_path / "o",
                        scenes=0)
    after = rep["sets"]["after"]
    assert after["n_runs"] == 3 and [Path(r["path"]).parent.name for r in after["runs"]] == ["seed0", "seed1", "seed2"]
    per_run = []
    for s in range(3):
        cm = sum(M.confusion_matrix(arrays["truth"][k], arrays["pred"][s, "after", k], 7) for k in STEMS)
        per_run.append(M.mean_iou(cm))
        assert after["runs"][s]["mean_iou"] == pytest.approx(per_run[-1])
    assert after["mean_iou"] == pytest.approx(np.mean(per_run))
    assert after["mean_iou_std"] == pytest.approx(np.std(per_run, ddof=1))
    assert np.sum(after["confusion_matrix"]) == 3 * after["n_pixels"]
    comp = rep["comparisons"]["after vs before"]
    assert comp["mean_iou_delta"] == pytest.approx(np.mean(per_run) - rep["sets"]["before"]["mean_iou"])
    # the report's interval is the two-level bootstrap of the per-scene matrices, 3 runs against 1: unpaired
    ref = np.stack([[M.confusion_matrix(arrays["truth"][k], arrays["pred"][0, "before", k], 7) for k in STEMS]])
    new = np.stack([[M.confusion_matrix(arrays["truth"][k], arrays["pred"][s, "after", k], 7) for k in STEMS]
                    for s in range(3)])
    expected = M.bootstrap_delta(ref, new, M.mean_iou)
    assert comp["mean_iou_delta_ci95"] == pytest.approx(expected["ci"], rel=1e-12)
    assert comp["mean_iou_share_improved"] == expected["share_improved"]
    assert comp["runs"] == [1, 3] and comp["runs_paired"] is False
    assert "after vs before (3 vs 1 runs)" in rep["meta"]["bootstrap"]["method"]
    assert not (tmp_path / "o" / "scenes.png").exists()
    assert (tmp_path / "o" / "report.md").is_file()
    cfg = json.loads((tmp_path / "o" / "config.json").read_text())
    assert cfg["stage"] == "eval" and len(cfg["sets"]["after"]) == 3 and cfg["config"]["scenes"] == 0


def test_repeated_name_adds_runs_and_api_writes_nothing_without_out(data, tmp_path, monkeypatch):
    root, _ = data
    sets = parse_pred_specs([f"after={root}/runs/seed0/after", f"after={root}/runs/seed1/after",
                             f"x/y z={root}/runs/seed0/before"])
    assert list(sets) == ["after", "x/y z"] and len(sets["after"]) == 2
    monkeypatch.chdir(tmp_path)
    rep = evaluate_sets(root / "truth", sets, SPARCS, n_resamples=50)
    assert rep["sets"]["after"]["n_runs"] == 2 and "x/y z vs after" in rep["comparisons"]
    assert list(tmp_path.iterdir()) == []


def test_defaults_use_paper_folders_and_their_classes(tmp_path):
    data_root = tmp_path / "work"
    _make_data(data_root, registry=TINY, stems=STEMS[:2])
    (data_root / "images_CGAN/test").mkdir(parents=True)
    shutil.move(data_root / "truth", data_root / "images_CGAN/test/b")
    TINY.save(data_root / "images_CGAN/classes.json")
    shutil.move(data_root / "runs/seed0/before", data_root / "Pred_before_augmentation")
    shutil.move(data_root / "runs/seed0/after", data_root / "Pred_after_augmentation")
    r = subprocess.run([sys.executable, str(ROOT / "eval.py"), "--quiet", "--bootstrap", "100"], cwd=data_root,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rep = json.loads((data_root / "eval_report/report.json").read_text())
    assert [c["name"] for c in rep["classes"]] == TINY.names
    assert rep["meta"]["truth"] == "images_CGAN/test/b"
    assert list(rep["sets"]) == ["before", "after"]
    assert rep["sets"]["after"]["per_class"]["ice"]["support"] == 0
    assert rep["meta"]["bootstrap"]["resamples"] == 100


def test_classes_option_overrides(tmp_path):
    _make_data(tmp_path, registry=TINY, stems=STEMS[:2])
    TINY.save(tmp_path / "mine.json")
    out = tmp_path / "o"
    args = ["--truth", str(tmp_path / "truth"), "--pred", f"a={tmp_path}/runs/seed0/before", "--out", str(out),
            "--quiet", "--scenes", "1"]
    assert cli_main(main, args + ["--classes", str(tmp_path / "mine.json")]) == 0
    assert [c["name"] for c in json.loads((out / "report.json").read_text())["classes"]] == TINY.names
    assert json.loads((out / "report.json").read_text())["comparisons"] == {}


def test_rgb_and_grey_masks_are_read(tmp_path):
    rng = np.random.default_rng(3)
    t = rng.integers(0, 4, (SIZE, SIZE)).astype(np.uint8)
    p = _noisy(rng, t, 0.3, 4)
    write_label(tmp_path / "truth/s.png", t, TINY)
    Image.fromarray(TINY.colors[p]).save(tmp_path / "rgb_pred.png")
    (tmp_path / "rgb").mkdir()
    shutil.move(tmp_path / "rgb_pred.png", tmp_path / "rgb/s.png")
    (tmp_path / "grey").mkdir()
    Image.fromarray(p, "L").save(tmp_path / "grey/s.png")
    rep = evaluate_sets(tmp_path / "truth", {"rgb": [tmp_path / "rgb"], "grey": [tmp_path / "grey"]}, TINY)
    expected = M.confusion_matrix(t, p, 4).tolist()
    assert rep["sets"]["rgb"]["confusion_matrix"] == expected == rep["sets"]["grey"]["confusion_matrix"]
    assert rep["comparisons"]["grey vs rgb"]["mean_iou_delta"] == 0.0


def test_an_ignore_entry_in_classes_json_is_scored_and_drawn(tmp_path, capsys):
    """The README's own {"name": "ignore", "ignore": true} entry: its colour is unlabelled truth, every figure
    is drawn, and the report's classes are the classes scored."""
    reg = ClassRegistry(TINY.classes, ignore_colors=((90, 90, 90),))
    _make_data(tmp_path, registry=reg, stems=STEMS[:2])
    reg.save(tmp_path / "classes.json")
    truth = np.asarray(Image.open(tmp_path / "truth" / "scene_a.png").convert("RGB")).copy()
    truth[-4:, -4:] = (90, 90, 90)
    Image.fromarray(truth).save(tmp_path / "truth" / "scene_a.png")
    out = tmp_path / "o"
    args = ["--truth", str(tmp_path / "truth"), "--pred", f"before={tmp_path}/runs/seed0/before", "--pred",
            f"after={tmp_path}/runs/seed0/after", "--images", str(tmp_path / "photos"), "--out", str(out),
            "--quiet", "--bootstrap", "20"]
    assert cli_main(main, args, prog="eval.py") == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    assert [c["name"] for c in rep["classes"]] == TINY.names and rep["ignore_colors"] == [[90, 90, 90]]
    assert rep["sets"]["after"]["n_ignored_pixels"] == 2 * 9 + 16
    assert all((out / f).is_file() for f in OUTPUTS)


def test_colour_tolerance_and_ignore_class_on_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(5)
    t = rng.integers(0, 4, (SIZE, SIZE)).astype(np.uint8)
    noisy = np.clip(TINY.colors[t].astype(int) + rng.integers(-3, 4, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    (tmp_path / "truth").mkdir()
    Image.fromarray(noisy).save(tmp_path / "truth" / "s.png")
    write_label(tmp_path / "pred" / "s.png", t, TINY)
    TINY.save(tmp_path / "classes.json")
    args = ["--truth", str(tmp_path / "truth"), "--pred", f"p={tmp_path}/pred", "--quiet", "--bootstrap", "0",
            "--classes", str(tmp_path / "classes.json")]
    _fails(capsys, args, tmp_path / "o", "nearest")
    assert cli_main(main, args + ["--out", str(tmp_path / "o"), "--colour-tolerance", "6"], prog="eval.py") == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["sets"]["p"]["overall_accuracy"] == 1.0
    assert cli_main(main, args + ["--out", str(tmp_path / "o2"), "--colour-tolerance", "6", "--ignore-class", "ice"],
                    prog="eval.py") == 2
    assert "mask values that are no class" in capsys.readouterr().err    # the prediction still holds ice
    write_label(tmp_path / "pred" / "s.png", np.where(t == 3, 0, t).astype(np.uint8), TINY)
    assert cli_main(main, args + ["--out", str(tmp_path / "o3"), "--colour-tolerance", "6", "--ignore-class", "ice"],
                    prog="eval.py") == 0
    rep = json.loads((tmp_path / "o3" / "report.json").read_text())
    assert [c["name"] for c in rep["classes"]] == ["sea", "forest", "town"]
    assert rep["sets"]["p"]["n_ignored_pixels"] == int((t == 3).sum()) and rep["sets"]["p"]["overall_accuracy"] == 1.0


# ----------------------------------------------------------------------------------------- bad inputs

@pytest.fixture
def bad(tmp_path):
    """A fresh copy-able layout per test: truth/ and runs/seed0/{before,after}/ of 3 scenes."""
    _make_data(tmp_path, stems=STEMS[:3])
    return tmp_path


def _fails(capsys, args, out: Path, names: str) -> str:
    code = cli_main(main, [*map(str, args), "--out", str(out), "--quiet"], prog="eval.py")
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eval.py: error: "), err
    assert names in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def _args(root):
    return ["--truth", root / "truth", "--pred", f"before={root}/runs/seed0/before",
            "--pred", f"after={root}/runs/seed0/after"]


def _label(root, rel, shape=(SIZE, SIZE), value=None):
    p = np.zeros(shape, np.uint8)
    if value is not None:
        p[0, 0] = value
    write_label(root / rel, p, SPARCS)


def _red_pixel(root, rel):
    rgb = SPARCS.colors[np.zeros((SIZE, SIZE), np.uint8)]
    rgb[5, 5] = (255, 0, 0)
    Image.fromarray(rgb).save(root / rel)


BROKEN = {   # how a layout is broken, the file the error line must name, and what it must say
    "missing prediction": (lambda r: (r / "runs/seed0/after/scene_b.png").unlink(), "truth/scene_b.png",
                           "no prediction"),
    "extra prediction": (lambda r: shutil.copy(r / "runs/seed0/after/scene_a.png", r / "runs/seed0/after/scene_z.png"),
                         "runs/seed0/after/scene_z.png", "no truth mask"),
    "size mismatch": (lambda r: _label(r, "runs/seed0/before/scene_c.png", shape=(SIZE, SIZE + 2)),
                      "runs/seed0/before/scene_c.png", f"{SIZE + 2}x{SIZE}"),
    "colour that is no class": (lambda r: _red_pixel(r, "runs/seed0/after/scene_c.png"),
                                "runs/seed0/after/scene_c.png", "(255, 0, 0)"),
    "index that is no class": (lambda r: _label(r, "runs/seed0/before/scene_a.png", value=9),
                               "runs/seed0/before/scene_a.png", "[9]"),
    "ignore value in a prediction": (lambda r: _label(r, "runs/seed0/after/scene_b.png", value=IGNORE_INDEX),
                                     "runs/seed0/after/scene_b.png", "255"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_layout_is_one_line_naming_the_file(bad, capsys, case):
    breaks, rel, says = BROKEN[case]
    breaks(bad)
    line = _fails(capsys, _args(bad), bad / "out", str(bad / rel))
    assert says in line


@pytest.mark.parametrize("args, names", [
    (["--truth", "{}/nope", "--pred", "a={}/runs/seed0/after"], "{}/nope"),
    (["--truth", "{}/truth", "--pred", "a={}/nope"], "{}/nope"),
    (["--truth", "{}/truth", "--pred", "a={}/runs/x*/after"], "x*"),
    (["--truth", "{}/truth", "--pred", "{}/runs/seed0/after"], "NAME=DIR")])
def test_bad_folder_options(bad, capsys, args, names):
    _fails(capsys, [a.format(bad) for a in args], bad / "out", names.format(bad))


def test_out_is_an_input_folder(bad, capsys):
    code = cli_main(main, [*map(str, _args(bad)), "--out", str(bad / "runs/seed0/after"), "--quiet"])
    assert code == 2 and "--out is one of the input folders" in capsys.readouterr().err
    assert sorted(p.name for p in (bad / "runs/seed0/after").iterdir()) == [f"{s}.png" for s in STEMS[:3]]


def test_api_refuses_an_input_folder_as_out(bad):
    with pytest.raises(UserError, match="input folders"):
        evaluate_sets(bad / "truth", {"a": [bad / "runs/seed0/after"]}, SPARCS, out=bad / "runs/seed0/after")
    assert sorted(p.name for p in (bad / "runs/seed0/after").iterdir()) == [f"{s}.png" for s in STEMS[:3]]


def test_bad_classes_file(bad, capsys):
    (bad / "classes.json").write_text("{not json")
    _fails(capsys, [*_args(bad), "--classes", bad / "classes.json"], bad / "out", str(bad / "classes.json"))


def test_photo_missing_for_a_scene(bad, capsys):
    (bad / "photos/scene_a.png").unlink()
    _fails(capsys, [*_args(bad), "--images", bad / "photos"], bad / "out", str(bad / "truth/scene_a.png"))


def test_negative_options(bad, capsys):
    _fails(capsys, [*_args(bad), "--scenes", "-1"], bad / "out", "--scenes")
    _fails(capsys, [*_args(bad), "--bootstrap", "-5"], bad / "out", "--bootstrap")


def test_script_exit_code_and_one_line(bad):
    (bad / "runs/seed0/after/scene_b.png").unlink()
    r = subprocess.run([sys.executable, "eval.py", *map(str, _args(bad)), "--out", str(bad / "out")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert str(bad / "truth/scene_b.png") in r.stderr
    assert not (bad / "out").exists()


def test_run_returns_report(bad):
    rep = run(EvalConfig(truth=bad / "truth", preds=[f"before={bad}/runs/seed0/before"], out=bad / "o",
                         scenes=1, progress=False, bootstrap=10))
    cm = sum(M.confusion_matrix(_read(bad / "truth" / f"{k}.png"), _read(bad / f"runs/seed0/before/{k}.png"), 7)
             for k in STEMS[:3])
    assert rep["sets"]["before"]["confusion_matrix"] == cm.tolist()
    assert rep["sets"]["before"]["mean_iou"] == pytest.approx(M.mean_iou(cm), rel=1e-12)
    assert rep["sets"]["before"]["n_images"] == rep["sets"]["before"]["n_scenes"] == 3
    assert json.loads((bad / "o/config.json").read_text())["sets"]["before"] == [f"{bad}/runs/seed0/before"]


# ----------------------------------------------------------------------------------- several references

def test_comparisons_against_two_references(data, tmp_path, capsys):
    root, _ = data
    out = tmp_path / "o"
    args = ["--truth", root / "truth", "--pred", f"before={root}/runs/seed0/before",
            "--pred", f"after={root}/runs/seed*/after", "--pred", f"mid={root}/runs/seed1/before",
            "--reference", "before", "--reference", "after", "--out", out, "--quiet", "--scenes", "0",
            "--bootstrap", "200"]
    assert cli_main(main, list(map(str, args))) == 0
    rep = json.loads((out / "report.json").read_text())
    comps = rep["comparisons"]
    assert list(comps) == ["after vs before", "mid vs before", "before vs after", "mid vs after"]
    assert rep["meta"]["references"] == ["before", "after"] and rep["meta"]["reference_set"] == "before"
    sets = rep["sets"]
    assert comps["mid vs after"]["mean_iou_delta"] == pytest.approx(sets["mid"]["mean_iou"] - sets["after"]["mean_iou"])
    assert comps["before vs after"]["mean_iou_delta"] == pytest.approx(-comps["after vs before"]["mean_iou_delta"])
    # the same draws (the scenes, and each set's runs: 1 and 3 are not paired), so swapping the roles
    # mirrors the interval
    lo, hi = comps["after vs before"]["mean_iou_delta_ci95"]
    assert comps["before vs after"]["mean_iou_delta_ci95"] == pytest.approx([-hi, -lo])
    md = (out / "report.md").read_text()
    assert md.count("## Comparisons against `before`") == 1 and md.count("## Comparisons against `after`") == 1
    assert md.index("| mid vs after |") > md.index("## Comparisons against `after`") > md.index("| mid vs before |")
    # the API: a reference that is no set is left out with a warning, the present one is used
    capsys.readouterr()
    api = evaluate_sets(root / "truth", {"before": [root / "runs/seed0/before"], "after": [root / "runs/seed0/after"]},
                        SPARCS, references=["after", "classic"], n_resamples=20)
    assert list(api["comparisons"]) == ["before vs after"]
    err = capsys.readouterr().err
    assert err.splitlines() == ["warning: reference 'classic' is not among the sets and is left out"]


def test_reference_that_is_no_set(bad, capsys):
    line = _fails(capsys, [*_args(bad), "--reference", "gan"], bad / "out", "--reference gan")
    assert "sets: before, after" in line


# ---------------------------------------------------------------------------------------------- tiles

def _tiled_layout(root: Path, with_json: bool):
    """Scene A (6x6, truth all sea) cut into four 4x4 tiles at offsets 0 and 2, whose overlaps split at
    row/column 3; each tile predicts sea on the pixels it owns and forest on the others. Scene "plain"
    (6x6, all forest) is a whole file. Set a: as described; set b: sea everywhere."""
    tiles = {}
    own = {0: slice(0, 3), 2: slice(1, 4)}       # in tile coordinates, by tile offset
    for r, top in enumerate((0, 2)):
        for c, left in enumerate((0, 2)):
            stem = f"A__t{r}_{c}"
            tiles[stem] = {"scene": "A", "top": top, "left": left, "height": 4, "width": 4,
                           "scene_height": 6, "scene_width": 6}
            write_label(root / f"data/test/b/{stem}.png", np.zeros((4, 4), np.uint8), TINY)
            pred = np.ones((4, 4), np.uint8)
            pred[own[top], own[left]] = 0
            write_label(root / f"a/{stem}.png", pred, TINY)
            write_label(root / f"b/{stem}.png", np.zeros((4, 4), np.uint8), TINY)
    for folder, value in (("data/test/b", 1), ("a", 1), ("b", 0)):
        write_label(root / folder / "plain.png", np.full((6, 6), value, np.uint8), TINY)
    if with_json:
        (root / "data/test/tiles.json").write_text(json.dumps(tiles))   # the truth folder's parent


def _cm(entries: dict) -> list:
    cm = np.zeros((4, 4), np.int64)
    for (t, p), v in entries.items():
        cm[t, p] = v
    return cm.tolist()


def test_tiles_json_counts_every_scene_pixel_once_and_the_bootstrap_draws_scenes(tmp_path, capsys):
    _tiled_layout(tmp_path, with_json=True)
    rep = evaluate_sets(tmp_path / "data/test/b", {"a": [tmp_path / "a"], "b": [tmp_path / "b"]}, TINY,
                        n_resamples=300, out=tmp_path / "o", scenes=2)
    assert rep["meta"]["scenes_shown"] == ["plain", "A"] and (tmp_path / "o/scenes.png").is_file()
    assert capsys.readouterr().err == ""
    a, b = rep["sets"]["a"], rep["sets"]["b"]
    # 36 sea pixels of A counted once each, all owned by the tile that got them right; 36 forest of plain
    assert a["confusion_matrix"] == _cm({(0, 0): 36, (1, 1): 36})
    assert b["confusion_matrix"] == _cm({(0, 0): 36, (1, 0): 36})
    assert a["n_pixels"] == 72 and a["n_images"] == 5 and a["n_scenes"] == 2
    assert rep["meta"]["scenes"] == {"A": ["A__t0_0", "A__t0_1", "A__t1_0", "A__t1_1"], "plain": ["plain"]}
    assert a["per_scene"]["A"]["n_files"] == 4 and a["per_scene"]["A"]["mean_iou"] == 1.0
    assert b["per_scene"]["plain"]["mean_iou"] == 0.0 and rep["meta"]["tiles"].endswith("data/test/tiles.json")
    # the bootstrap resamples the two scenes (tiles of A together), not the five files
    scenes_a = np.array([[_cm({(0, 0): 36}), _cm({(1, 1): 36})]])
    scenes_b = np.array([[_cm({(0, 0): 36}), _cm({(1, 0): 36})]])
    expected = M.bootstrap_delta(scenes_a, scenes_b, M.mean_iou, n_resamples=300)
    comp = rep["comparisons"]["b vs a"]
    assert comp["mean_iou_delta_ci95"] == pytest.approx(expected["ci"])
    assert comp["mean_iou_share_improved"] == expected["share_improved"]
    assert comp["images_worse"] == 1 and comp["images_unchanged"] == 1
    assert comp["per_scene_mean_iou_delta"] == {"A": 0.0, "plain": -1.0}
    # the scene grid lays the tiles out by tiles.json, each pixel from its owner: set a's A is all sea
    plan = plan_evaluation(tmp_path / "data/test/b", {"a": [tmp_path / "a"]}, TINY)
    mosaic = scene_image(plan, "A", lambda i: read_label(plan.pred_files["a"][0][i], TINY), IGNORE_INDEX)
    np.testing.assert_array_equal(mosaic, np.zeros((6, 6), np.uint8))


def test_tiles_without_tiles_json_are_grouped_with_a_warning(tmp_path):
    _tiled_layout(tmp_path, with_json=False)
    TINY.save(tmp_path / "data/classes.json")
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "eval.py", "--truth", tmp_path / "data/test/b", "--pred", f"a={tmp_path / 'a'}",
                        "--out", out, "--quiet", "--bootstrap", "50"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: 4 test files look like tiles") and "tiles.json" in lines[0]
    rep = json.loads((out / "report.json").read_text())
    # every tile counted as it is: the 28 overlap pixels each tile does not own come in as forest
    assert rep["sets"]["a"]["confusion_matrix"] == _cm({(0, 0): 36, (0, 1): 28, (1, 1): 36})
    assert rep["meta"]["scenes"]["A"] == ["A__t0_0", "A__t0_1", "A__t1_0", "A__t1_1"]
    assert rep["meta"]["warnings"] == [lines[0][len("warning: "):]]
    md = (out / "report.md").read_text()
    assert "| A | 4 |" in md and "overlapping pixels count once per tile" in md


def test_owned_windows_of_sparcs_tiling():
    # 1000 px in 256 px tiles: offsets 0, 248, 496, 744; the 8 px overlaps split at 252, 500, 748
    tiles = {f"s__t0_{c}": Tile("s", 0, left, 256, 256, 256, 1000) for c, left in enumerate((0, 248, 496, 744))}
    win = owned_windows(tiles, Path("tiles.json"))
    assert [(w[1].start, w[1].stop) for w in win.values()] == [(0, 252), (4, 252), (4, 252), (4, 256)]
    assert all(w[0] == slice(0, 256) for w in win.values())
    with pytest.raises(UserError, match="same pixels"):
        owned_windows({"x": Tile("s", 0, 0, 4, 4, 8, 8), "y": Tile("s", 0, 0, 4, 4, 8, 8)}, Path("tiles.json"))


def test_tile_missing_from_tiles_json(tmp_path, capsys):
    _tiled_layout(tmp_path, with_json=True)
    tiles = json.loads((tmp_path / "data/test/tiles.json").read_text())
    del tiles["A__t1_1"]
    (tmp_path / "data/test/tiles.json").write_text(json.dumps(tiles))
    line = _fails(capsys, ["--truth", tmp_path / "data/test/b", "--pred", f"a={tmp_path / 'a'}"], tmp_path / "o",
                  str(tmp_path / "data/test/b/A__t1_1.png"))
    assert "no entry in" in line


# ------------------------------------------------------------------------------- one-line CLI errors

@pytest.mark.parametrize("extra, names", [(["--bootstrap", "many"], "argument --bootstrap: invalid int value"),
                                          (["--nope"], "unrecognized arguments: --nope")])
def test_bad_option_is_one_line(bad, capsys, extra, names):
    line = _fails(capsys, [*_args(bad), *extra], bad / "out", names)
    assert line.endswith("(see eval.py --help)")


def test_unwritable_out_fails_before_reading(bad, capsys, monkeypatch):
    (bad / "taken").write_text("a file")
    # a truth folder that does not exist: the --out check comes first
    args = ["--truth", bad / "nope", "--pred", f"a={bad}/runs/seed0/after"]
    code = cli_main(main, [*map(str, args), "--out", str(bad / "taken"), "--quiet"], prog="eval.py")
    assert code == 2 and capsys.readouterr().err == f"eval.py: error: {bad / 'taken'}: --out is a file, not a folder\n"
    assert (bad / "taken").read_text() == "a file"
    line = _fails(capsys, args, bad / "taken/sub/out", "--out cannot be created")
    assert str(bad / "taken") in line
    import tempfile

    def read_only(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    _fails(capsys, args, bad / "ro", "--out cannot be created")


def test_mean_and_spread_print_n_a_without_a_spread_and_zero_without_a_sign():
    from landaug.evaluate.markdown import pm

    assert pm(None, -0.0) == "n/a" and pm(None, None) == "n/a"
    assert pm(0.5, -0.0) == "0.500 ± 0.000" and pm(0.5, 0.0123) == "0.500 ± 0.012" and pm(0.5, None) == "0.500"
