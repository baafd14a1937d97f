"""K-fold testing and label budgets: folds and nested subsets, the checks made before any work, and a tiny
grid of folds x budgets x arms run on Dask, resumed serially with the same bits, and a failed cell."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landaug import pipeline
from landaug.errors import UserError, cli_main
from landaug.geometry import scene_of
from landaug.grid import marker_path
from landaug.pipeline.places import parse_budgets
from landaug.split import draw_folds, nested_subsets

ROOT = Path(__file__).resolve().parents[1]
DEMO = ["--demo", "--demo-scenes", "12", "--demo-size", "32", "--size", "32", "--cgan-steps", "2", "--evaluations", "1",
        "--cgan-batch", "2", "--cgan-width", "0.125", "--synth-steps", "2", "--synth-width", "0.125",
        "--n-generated", "2", "--threads", "1", "--quiet"]
GRID = [*DEMO, "--folds", "2", "--train-scenes", "2,all", "--arms", "baseline,masksynth"]


def _config(*argv):
    argv = list(map(str, argv))
    return pipeline.config_from_args(pipeline.build_parser().parse_args(argv), argv)


# ---- folds and budgets ------------------------------------------------------------------------------

def test_folds_are_seeded_balanced_and_test_every_scene_once():
    scenes = [f"s{i:02d}" for i in range(14)]
    folds = draw_folds(scenes, 4, seed=0)
    assert sorted(s for f in folds for s in f) == scenes
    assert sorted(len(f) for f in folds) == [3, 3, 4, 4]
    assert draw_folds(list(reversed(scenes)), 4, seed=0) == folds
    assert draw_folds(scenes, 4, seed=1) != folds


def test_a_group_never_spans_folds():
    groups = {f"t{t}--p{k}": f"t{t}" for t in range(6) for k in range(t % 3 + 1)}    # folders of 1, 2, 3 scenes
    for seed in range(5):
        folds = draw_folds(list(groups), 3, seed, groups)
        owner = {groups[s]: i for i, f in enumerate(folds) for s in f}
        assert all(owner[groups[s]] == i for i, f in enumerate(folds) for s in f)
        assert sorted(len(f) for f in folds) == [4, 4, 4]
    with pytest.raises(UserError, match="--folds 7 needs at least 7 folders of scenes .* use --folds 6 or fewer"):
        draw_folds(list(groups), 7, 0, groups)


def test_budgets_are_nested_and_seeded():
    train = [f"s{i:02d}" for i in range(30)]
    subsets = nested_subsets(train, [6, 12, 24], seed=0, fold=1)
    assert [len(subsets[k]) for k in ("6", "12", "24")] == [6, 12, 24]
    assert set(subsets["6"]) < set(subsets["12"]) < set(subsets["24"]) < set(train)
    assert nested_subsets(list(reversed(train)), [6, 12, 24], 0, 1) == subsets
    assert nested_subsets(train, [6], 0, 2)["6"] != subsets["6"]
    assert nested_subsets(train, [6], 1, 1)["6"] != subsets["6"]
    assert parse_budgets(" all,24, 6,12") == (6, 12, 24, "all")
    for text, needle in (("6,x", "'x' is neither"), ("0", "'0' is neither"), ("6,6", "names 6 twice"),
                         (",", "at least")):
        with pytest.raises(UserError, match=needle):
            parse_budgets(text)


# ---- checks before any work -------------------------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["--folds", "3", "--test-list", "{list}"], "--test-list and --folds are exclusive"),
    (["--folds", "3", "--test-fraction", "0.2"], "--test-fraction sets one test set aside"),
    (["--folds", "1"], "--folds must be at least 2"),
    (["--folds", "13"], "--folds 13 needs at least 13 labelled scenes, found 12"),
    (["--folds", "3", "--train-scenes", "8,all"], "--train-scenes 8 is more than the 7 training scenes of fold0 "
                                                  "seed0 (after its test and validation scenes): the largest budget "
                                                  "possible is 7"),
    (["--train-scenes", "11"], "the largest budget possible is 10"),
    (["--folds", "3", "--train-scenes", "1", "--cgan-batch", "4"], "--cgan-batch 4 is larger than the 1 training "
                                                                   "pairs of the 1 scenes of budget 1 in fold0 seed0"),
    (["--train-scenes", "2", "--full-budget-from", "{list}"], "no pipeline run here"),
    (["--train-scenes", "2,all", "--full-budget-from", "{run}"], "drop all from --train-scenes"),
    (["--full-budget-from", "{run}"], "it needs --train-scenes"),
])
def test_bad_fold_and_budget_options_are_refused_in_one_line_before_anything_is_written(tmp_path, capsys, argv,
                                                                                          needle):
    (tmp_path / "test.txt").write_text("synth0000_0001\n")
    argv = [a.format(list=tmp_path / "test.txt", run=tmp_path) for a in argv]
    out = tmp_path / "runs" / "a"
    assert cli_main(pipeline.main, [*DEMO, *argv, "--out", str(out)], prog="pipeline.py") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_a_full_budget_run_must_match_and_have_finished(tmp_path):
    other = tmp_path / "full"
    first = _config(*DEMO, "--folds", "3", "--arms", "baseline", "--out", other)
    other.mkdir()
    pipeline.cli.save_config(other / "config.json", first, stage="pipeline")
    for cfg_args, needle in ((["--cgan-steps", "3"], "that run has --cgan-steps 2, this one 3"),
                             (["--arms", "baseline,classic"], "that run has no arm classic"),
                             (["--seeds", "2"], r"that run has 1 seed\(s\), this one --seeds 2"),
                             ([], "that run has not finished fold0/seed0/baseline")):
        argv = [*DEMO, "--folds", "3", "--arms", "baseline", "--train-scenes", "2", "--full-budget-from", other,
                *cfg_args, "--out", tmp_path / "b"]
        with pytest.raises(UserError, match=needle):
            pipeline.validate(_config(*argv))


def test_stage_1_keeps_every_scene_and_the_folds_keep_folders_whole(aerial, tmp_path):
    from landaug.pipeline.stages import Run, stage_data, stage_split

    aerial.write_classes(aerial.fixed())
    cfg = _config("--images", f"{aerial.root}/*/images", "--masks", f"{aerial.root}/*/masks", "--classes",
                  aerial.root / "classes.json", "--ignore-class", "Unlabeled", "--group-by", "folder", "--folds", "2",
                  "--val-fraction", "0.3", "--size", "32", "--data-mode", "resize", "--arms", "baseline", "--cgan-batch", "2",
                  "--quiet", "--out", tmp_path / "r")
    pipeline.validate(cfg)
    run = Run(cfg)
    record = stage_data(run)
    assert record["test_scenes"] == [] and len(record["train_scenes"]) == 12 and record["folds"] == [6, 6]
    folds = json.loads((tmp_path / "r" / "folds.json").read_text())["folds"]
    folder = lambda s: s.split("--")[0]   # noqa: E731
    assert not {folder(s) for s in folds[0]} & {folder(s) for s in folds[1]}
    for fold in (0, 1):
        stage_split(run, seed=0, fold=fold)
        split = json.loads((tmp_path / "r" / f"fold{fold}" / "seed0" / "split.json").read_text())
        assert split["test"] == folds[fold] and split["fold"] == fold and split["folds"] == 2
        parts = {p: {folder(s) for s in split[p]} for p in ("train", "val", "test")}
        assert len(parts["val"]) == 1 and not parts["val"] & parts["train"]
    whole = sorted(p.stem for p in (tmp_path / "r" / "data" / "images_CGAN" / "scenes" / "b").iterdir())
    assert whole == sorted(record["train_scenes"])


def test_a_resumed_run_keeps_its_executor_unless_told_where_to_run(tmp_path):
    from landaug.config import save_config
    from landaug.pipeline.options import resume_config

    out = tmp_path / "r"
    out.mkdir()
    save_config(out / "config.json", _config(*GRID, "--executor", "dask", "--workers", "2", "--out", out),
                stage="pipeline")
    # --threads is not carried over here: the grid keeps the budget of the finished cells
    where = lambda cfg: (cfg.executor, cfg.workers, cfg.scheduler, cfg.threads)  # noqa: E731
    assert where(resume_config({"out": out})) == ("dask", 2, None, 0)
    assert where(resume_config({"out": out, "executor": "serial"})) == ("serial", 0, None, 0)
    assert where(resume_config({"out": out, "scheduler": "tcp://head:8786", "executor": "dask"})) == (
        "dask", 0, "tcp://head:8786", 0)


def test_the_size_of_the_grid_is_said_before_it_runs(tmp_path):
    from landaug.pipeline.cells import build, grid_size

    cfg = _config(*GRID, "--seeds", "2", "--out", tmp_path / "r")
    cells = build(cfg)
    line = grid_size(cells, cfg, tmp_path / "r")
    assert line == ("the grid: 30 cells: 1 stage-1 preparation, 4 splits, 8 mask-to-photo generator trainings of "
                    "2 steps, 16 pix2pix trainings of 2 steps, 1 evaluation")
    by_name = {c.name: c for c in cells}
    assert by_name["fold1/seed1/budget2/masksynth"].needs == ("fold1/seed1/split",
                                                              "fold1/seed1/budget2/masksynth_generator")
    assert len(by_name["eval"].needs) == 16
    # seeds outermost: stopped half-way, the run has tested every scene with its first seed
    assert [c.name for c in cells if c.name.endswith("/split")] == [f"fold{f}/seed{s}/split" for s in (0, 1)
                                                                     for f in range(2)]


def test_colour_probes_are_cells_whose_markers_choose_the_classic_augmentations(tmp_path):
    from landaug.files import write_json
    from landaug.pipeline.cells import build
    from landaug.pipeline.places import Place
    from landaug.pipeline.stages import Run, chosen_augment

    cfg = _config(*DEMO, "--arms", "baseline,classic,masksynth", "--classic-color", "auto", "--out", tmp_path / "r")
    by_name = {c.name: c for c in build(cfg)}
    assert by_name["seed0/classic"].needs == ("seed0/split", "seed0/classic-color-probe", "seed0/classic-plain-probe")
    assert by_name["seed0/classic-color-probe"].args["colour"] and "seed0/masksynth-color-probe" not in by_name
    run = Run(cfg)
    for probe, score in (("color", 0.4), ("plain", 0.3)):
        write_json(marker_path(tmp_path / "r", f"seed0/classic-{probe}-probe"), {"best_val_miou": score})
    assert chosen_augment(run, Place(0), "classic") == "jitter,dihedral,color"
    assert chosen_augment(run, Place(0), "baseline") == "jitter"
    write_json(marker_path(tmp_path / "r", "seed0/classic-plain-probe"), {"best_val_miou": 0.5})
    assert chosen_augment(run, Place(0), "classic") == "jitter,dihedral"


def _fake_run(root: Path, *argv) -> "pipeline.PipelineConfig":
    """A K-fold run whose arms predict the truth (classic: one scene in three all land), written without
    training: stage 1, the splits, the predictions of every place, its markers."""
    from landaug.files import write_json
    from landaug.pipeline.places import places
    from landaug.pipeline.stages import Run, stage_data, stage_split

    cfg = _config(*DEMO, "--folds", "3", "--arms", "baseline,classic", *argv, "--out", root)
    root.mkdir(parents=True)
    pipeline.cli.save_config(root / "config.json", cfg, stage="pipeline")
    run = Run(cfg)
    stage_data(run)
    truth = run.data / "images_CGAN" / "scenes" / "b"
    for fold in range(3):
        stage_split(run, seed=0, fold=fold)
    for place in places(cfg):
        test = json.loads(place.split_path(root).read_text())["test"]
        for arm in cfg.arms:
            out = place.dir(root) / arm / "Pred_test"
            out.mkdir(parents=True)
            for i, scene in enumerate(test):
                if arm == "classic" and i % 3 == 0:
                    shutil.copy(truth / f"{test[(i + 1) % len(test)]}.png", out / f"{scene}.png")
                else:
                    shutil.copy(truth / f"{scene}.png", out / f"{scene}.png")
            write_json(marker_path(root, f"{place.name}/{arm}"), {"steps": 2})
    return cfg


def test_the_report_pools_the_folds_and_takes_the_full_budget_from_another_run(tmp_path):
    from landaug.pipeline.evaluation import stage_eval
    from landaug.pipeline.stages import Run

    _fake_run(tmp_path / "full")
    cfg = _fake_run(tmp_path / "budgets", "--train-scenes", "2", "--full-budget-from", tmp_path / "full")
    pipeline.validate(cfg)
    record = stage_eval(Run(cfg))
    assert record["sets"] == ["baseline", "classic"]
    rows = json.loads((tmp_path / "budgets/eval_report/label_budget.json").read_text())
    assert [(r["budget"], r["scenes"], r["arm"]) for r in rows] == [(2, 2, "baseline"), (2, 2, "classic"),
                                                                      ("all", 7, "baseline"), ("all", 7, "classic")]
    assert rows[0]["mean_iou"] == 1.0 and rows[1]["gain_over_baseline"] < 0 and rows[1]["gain_over_baseline_ci95"]
    full = json.loads((tmp_path / "budgets/eval_report/report.json").read_text())
    assert full["sets"]["baseline"]["runs"][0]["path"] == str(tmp_path / "budgets/pooled/seed0/baseline")
    assert len(list((tmp_path / "budgets/pooled/budget2/seed0/classic").iterdir())) == 12
    md = (tmp_path / "budgets/eval_report/report.md").read_text()
    assert f"The full budget (all) is the run in `{tmp_path / 'full'}`" in md and "| 2 | classic | 1 |" in md
    # a scene predicted by two folds, and another run's other splits, are refused
    twice = next((tmp_path / "budgets/fold0/seed0/budget2/baseline/Pred_test").iterdir())
    shutil.copy(twice, tmp_path / "budgets/fold1/seed0/budget2/baseline/Pred_test")
    with pytest.raises(UserError, match=f"scene {twice.stem} was also predicted in .*fold0/seed0/budget2/baseline"):
        stage_eval(Run(cfg))
    (tmp_path / "budgets/fold1/seed0/budget2/baseline/Pred_test" / twice.name).unlink()
    split = tmp_path / "full/fold2/seed0/split.json"
    split.write_text(split.read_text().replace('"val": [', '"val": ["x", '))
    with pytest.raises(UserError, match="its val scenes are not those of"):
        stage_eval(Run(cfg))


def test_cells_run_seeds_then_budgets_then_folds_so_a_stopped_run_has_whole_budgets():
    from landaug.pipeline.cells import build

    cfg = _config(*GRID, "--seeds", "2", "--out", "unused")
    arms = [c.name for c in build(cfg) if c.name.endswith("/baseline")]
    assert arms == [f"fold{f}/seed{s}{b}/baseline" for s in (0, 1) for b in ("/budget2", "") for f in range(2)]


def test_the_report_so_far_holds_the_finished_budgets_and_writes_nothing_else(tmp_path, capsys):
    """A run whose full budget has one fold left: the report so far is the budget-2 report the finished
    run would write, in eval_so_far/ alone; before any budget has every fold, one line and nothing written."""
    from landaug.pipeline.evaluation import stage_eval
    from landaug.pipeline.stages import Run

    root = tmp_path / "r"
    cfg = _fake_run(root, "--train-scenes", "2,all")
    stage_eval(Run(cfg))
    marker_path(root, "fold2/seed0/classic").unlink()
    before = sorted(p for p in root.rglob("*") if "eval_so_far" not in p.parts)
    assert cli_main(pipeline.main, ["--report-so-far", "--out", str(root), "--quiet"], prog="pipeline.py") == 0
    assert sorted(p for p in root.rglob("*") if "eval_so_far" not in p.parts) == before
    so_far = json.loads((root / "eval_so_far/report.json").read_text())
    finished = json.loads((root / "eval_report/budget2/report.json").read_text())
    assert {a: s["mean_iou"] for a, s in so_far["sets"].items()} == {a: s["mean_iou"] for a, s in finished["sets"].items()}
    assert so_far["comparisons"]["classic vs baseline"]["mean_iou_delta_ci95"] == \
        finished["comparisons"]["classic vs baseline"]["mean_iou_delta_ci95"]
    md = (root / "eval_so_far/report.md").read_text()
    assert md.startswith("**Report so far** of a run that may still be training: its first 1 of 1 seed(s), "
                         "label budget(s) 2 of 2, all")
    for fold in range(3):
        marker_path(root, f"fold{fold}/seed0/budget2/baseline").unlink(missing_ok=fold != 0)
    shutil.rmtree(root / "eval_so_far")
    assert cli_main(pipeline.main, ["--report-so-far", "--out", str(root)], prog="pipeline.py") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"pipeline.py: error: {root}: nothing to report yet: no budget has finished every arm in every "
                       "fold of its first seed (e.g. fold0/seed0/budget2); --report-so-far reports once one has")
    assert not (root / "eval_so_far").exists()


# ---- the tiny grid: 2 folds x 2 budgets x (baseline, masksynth and its generator) --------------------------

PLACES = [f"fold{f}/seed0{b}" for f in range(2) for b in ("/budget2", "")]


def _pipeline(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "pipeline.py"), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def kfold_run(tmp_path_factory) -> Path:
    """The tiny grid on a local Dask cluster of two workers, one TensorFlow thread per cell."""
    cwd = tmp_path_factory.mktemp("kfold")
    proc = _pipeline(*GRID, "--executor", "dask", "--workers", "2", "--out", "runs/k", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd / "runs" / "k"


@pytest.mark.slow
def test_every_scene_is_tested_exactly_once_per_seed_at_every_budget(kfold_run):
    run = kfold_run
    scenes = sorted(p.stem for p in (run / "data/images_CGAN/scenes/b").iterdir())
    assert len(scenes) == 12 and not list((run / "data/images_CGAN/test/b").iterdir())
    folds = json.loads((run / "folds.json").read_text())["folds"]
    assert sorted(s for f in folds for s in f) == scenes
    for budget, report_dir in (("budget2", run / "eval_report/budget2"), ("", run / "eval_report")):
        report = json.loads((report_dir / "report.json").read_text())
        for arm in ("baseline", "masksynth"):
            s = report["sets"][arm]
            assert s["n_runs"] == 1 and sorted(s["per_scene"]) == scenes and s["mean_iou_ci95"]
            assert all(e["n_files"] == 1 for e in s["per_scene"].values())
            predicted = [sorted(p.stem for p in (run / f"fold{f}/seed0" / budget / arm / "Pred_test").glob("*.png"))
                         for f in range(2)]
            assert predicted == folds and sorted(s for f in predicted for s in f) == scenes
        md = (report_dir / "report.md").read_text()
        assert all(f"| {scene} |" in md for scene in scenes)
    rows = json.loads((run / "eval_report/label_budget.json").read_text())
    assert [(r["budget"], r["arm"]) for r in rows] == [(2, "baseline"), (2, "masksynth"), ("all", "baseline"),
                                                        ("all", "masksynth")]
    assert rows[0]["scenes"] == 2 and rows[2]["scenes"] == 5 and rows[1]["gain_over_baseline_ci95"]
    assert (run / "eval_report/label_budget.png").stat().st_size > 10_000
    for page in (run / "summary.md", run / "eval_report/report.md"):
        text = page.read_text()
        assert "## Label budgets" in text and "| 5 (all) | masksynth | 1 |" in text
    executor = json.loads((run / "config.json").read_text())["executor"]
    assert (executor["kind"], executor["workers"], executor["threads"]) == ("dask", 2, 1)


@pytest.mark.slow
def test_budgets_are_nested_seeded_and_written_in_each_split(kfold_run):
    for f in range(2):
        split = json.loads((kfold_run / f"fold{f}/seed0/split.json").read_text())
        small = json.loads((kfold_run / f"fold{f}/seed0/budget2/split.json").read_text())
        assert split["budgets"] == nested_subsets(split["train"], [2], seed=0, fold=f)
        assert small["train"] == split["budgets"]["2"] and set(small["train"]) < set(split["train"])
        assert (small["budget"], small["val"], small["test"]) == (2, split["val"], split["test"])


@pytest.mark.slow
def test_no_validation_or_test_scene_reaches_any_training_input_of_any_fold(kfold_run):
    """Stage 1 kept every scene's training pairs, so each place's stages must leave out its fold's."""
    from conftest import assert_learned_only_from_split

    for place in PLACES:
        split = assert_learned_only_from_split(kfold_run / place, ["baseline", "masksynth"], ["models_synth"])
        pairs = {scene_of(p.stem) for p in (kfold_run / "data/images_CGAN/train/a").iterdir()}
        assert set(split["test"]) <= pairs       # the test scenes' pairs were there to be left out


@pytest.mark.slow
def test_serial_resume_gives_the_same_bits_and_a_failed_cell_is_reported_while_the_others_finish(kfold_run,
                                                                                                   tmp_path):
    """A copy of the Dask run loses one place's masksynth cells (the generator and the arm trained on its
    photos), which a serial resume trains again to the same bits: generated photos, the labeller's weights,
    its predictions; one cell fails there (its folder is a file): reported with its log, the others finish,
    exit code 2."""
    import tensorflow as tf

    copy = tmp_path / "k"
    shutil.copytree(kfold_run, copy)
    again, broken = "fold1/seed0/budget2", "fold0/seed0/budget2/baseline"
    for cell in ("masksynth_generator", "masksynth"):
        marker_path(copy, f"{again}/{cell}").unlink()
    for folder in ("models_synth", "generated_synth", "masksynth"):
        shutil.rmtree(copy / again / folder)
    for name in (broken, "eval"):
        marker_path(copy, name).unlink()
    shutil.rmtree(copy / broken)
    (copy / broken).write_text("not a folder")
    logged = len((copy / "grid.log").read_text())
    proc = _pipeline("--resume", "--out", copy, "--executor", "serial", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{again}/baseline started" not in (copy / "grid.log").read_text()[logged:], "a finished cell ran again"
    lines = proc.stderr.strip().splitlines()
    failed = next(line for line in lines if line.startswith("failed: "))
    assert failed.startswith(f"failed: {broken}: exit code 2") and f"(log: {copy / 'logs' / broken}.log)" in failed
    assert lines[-1] == "skipped: eval"
    for cell in ("masksynth_generator", "masksynth"):
        assert json.loads(marker_path(copy, f"{again}/{cell}").read_text())["ran_on"]["threads"] == 1
    ours, theirs = (sorted((r / again / "masksynth" / "Pred_test").glob("*.png")) for r in (copy, kfold_run))
    assert [p.name for p in ours] == [p.name for p in theirs] and len(ours) == 6
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(ours, theirs))
    def weights(run: Path, place: str):
        return tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / place / "masksynth/models_CGAN/best")))

    a, b, other = weights(copy, again), weights(kfold_run, again), weights(kfold_run, "fold0/seed0/budget2")
    names = [n for n in a.get_variable_to_shape_map() if not n.startswith("config")]
    assert len(names) > 20
    assert all(np.asarray(a.get_tensor(n)).tobytes() == np.asarray(b.get_tensor(n)).tobytes() for n in names)
    assert not all(np.array_equal(a.get_tensor(n), other.get_tensor(n)) for n in names)
    made = sorted((copy / again / "generated_synth" / "a").iterdir())
    assert made and all(p.read_bytes() == (kfold_run / again / "generated_synth" / "a" / p.name).read_bytes()
                        for p in made)
    assert json.loads((copy / "config.json").read_text())["executor"]["kind"] == "serial"
