"""eval.py end to end on small synthetic masks: outputs, numbers, multi-run sets and every bad input."""

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
from landaug.evaluate import EvalConfig, evaluate_sets, main, parse_pred_specs, run
from landaug.imgio import write_image, write_label

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
        assert set(s["per_image"]) == set(STEMS)
        t, p = arrays["truth"]["scene_b"], arrays["pred"][0, name, "scene_b"]
        assert s["per_image"]["scene_b"]["mean_iou"] == pytest.approx(M.mean_iou(M.confusion_matrix(t, p, 7)))
        assert s["per_image"]["scene_b"]["euclidean_distance"] == pytest.approx(
            M.pixel_color_distance(t, p, SPARCS.colors))
        assert 0 < s["euclidean"]["mean_distance"] < np.sqrt(3) * 255
    comp = rep["comparisons"]["after vs before"]
    assert comp["mean_iou_delta"] == pytest.approx(rep["sets"]["after"]["mean_iou"] - rep["sets"]["before"]["mean_iou"])
    lo, hi = comp["mean_iou_delta_ci95"]
    assert lo <= comp["mean_iou_delta"] <= hi and lo > 0
    assert comp["images_improved"] == 4 and comp["euclidean_improved_share"] == 1.0
    assert set(comp["per_class_iou_delta"]) == set(SPARCS.names)
    md = (out / "report.md").read_text()
    for fig in OUTPUTS[3:]:
        assert f"]({fig})" in md
    assert "Euclidean" in md and "bootstrap" in md.lower() and "after vs before" in md
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
    assert comp["mean_iou_delta_ci95"][0] <= comp["mean_iou_delta"] <= comp["mean_iou_delta_ci95"][1]
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


def test_missing_prediction(bad, capsys):
    (bad / "runs/seed0/after/scene_b.png").unlink()
    line = _fails(capsys, _args(bad), bad / "out", str(bad / "truth/scene_b.png"))
    assert "no prediction" in line


def test_extra_prediction(bad, capsys):
    shutil.copy(bad / "runs/seed0/after/scene_a.png", bad / "runs/seed0/after/scene_z.png")
    line = _fails(capsys, _args(bad), bad / "out", str(bad / "runs/seed0/after/scene_z.png"))
    assert "no truth mask" in line


def test_size_mismatch(bad, capsys):
    write_label(bad / "runs/seed0/before/scene_c.png", np.zeros((SIZE, SIZE + 2), np.uint8), SPARCS)
    line = _fails(capsys, _args(bad), bad / "out", str(bad / "runs/seed0/before/scene_c.png"))
    assert f"{SIZE + 2}x{SIZE}" in line


def test_colour_that_is_no_class(bad, capsys):
    rgb = SPARCS.colors[np.zeros((SIZE, SIZE), np.uint8)]
    rgb[5, 5] = (255, 0, 0)
    Image.fromarray(rgb).save(bad / "runs/seed0/after/scene_c.png")
    line = _fails(capsys, _args(bad), bad / "out", str(bad / "runs/seed0/after/scene_c.png"))
    assert "(255, 0, 0)" in line


def test_index_that_is_no_class(bad, capsys):
    p = np.zeros((SIZE, SIZE), np.uint8)
    p[0, 0] = 9
    write_label(bad / "runs/seed0/before/scene_a.png", p, SPARCS)
    line = _fails(capsys, _args(bad), bad / "out", str(bad / "runs/seed0/before/scene_a.png"))
    assert "[9]" in line


def test_ignore_value_in_a_prediction(bad, capsys):
    p = np.zeros((SIZE, SIZE), np.uint8)
    p[0, 0] = IGNORE_INDEX
    write_label(bad / "runs/seed0/after/scene_b.png", p, SPARCS)
    _fails(capsys, _args(bad), bad / "out", str(bad / "runs/seed0/after/scene_b.png"))


def test_missing_truth_folder(bad, capsys):
    _fails(capsys, ["--truth", bad / "nope", "--pred", f"a={bad}/runs/seed0/after"], bad / "out", str(bad / "nope"))


def test_missing_prediction_folder(bad, capsys):
    _fails(capsys, ["--truth", bad / "truth", "--pred", f"a={bad}/nope"], bad / "out", str(bad / "nope"))


def test_glob_matching_nothing(bad, capsys):
    _fails(capsys, ["--truth", bad / "truth", "--pred", f"a={bad}/runs/x*/after"], bad / "out", "x*")


def test_malformed_pred_option(bad, capsys):
    _fails(capsys, ["--truth", bad / "truth", "--pred", str(bad / "runs/seed0/after")], bad / "out", "NAME=DIR")


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
    assert rep["sets"]["before"]["n_images"] == 3
    assert json.loads((bad / "o/config.json").read_text())["sets"]["before"] == [f"{bad}/runs/seed0/before"]
