"""The run's wall-time estimate: its arithmetic, what a run counts, that it grows with the run, and timing real models."""

from __future__ import annotations

import dataclasses

import pytest

from landaug.errors import cli_main
from landaug.pipeline import build_parser, config_from_args, main
from landaug.pipeline import estimate as E

SIDE = 32


def _cfg(tmp_path, *argv):
    argv = ["--demo", "--out", str(tmp_path / "r"), *argv]
    return config_from_args(build_parser().parse_args(argv), argv)


def _counts(n_scenes=12, test=2, val=1, pairs=9, side=SIDE):
    stems = [f"s{i}" for i in range(n_scenes)]
    return {"shapes": {s: (side, side) for s in stems}, "tests": [stems[:test]], "rest": stems[test:],
            "val_per_seed": val, "train_pairs": pairs}


def _fake(trainings, **kw):
    return {E.model_key(t.model): E.Timing(**{"setup": 5.0, "step": 0.5, "per_window": 0.01, "label_setup": 1.0,
                                             "per_image": 0.002, **kw}) for t in trainings}


def _total(cfg, counts=None):
    trainings = E.pipeline_trainings(cfg, counts or _counts())
    return E.estimate(trainings, _fake(trainings))[0], trainings


def test_one_training_costs_its_setup_steps_windows_and_images(tmp_path):
    trainings = E.pipeline_trainings(_cfg(tmp_path, "--arms", "baseline", "--cgan-steps", "100",
                                          "--evaluations", "4"), _counts(val=2))
    (arm,) = trainings
    assert arm.stage == "seed0/baseline" and arm.steps == 100
    # 4 evaluations of 2 validation scenes and the 2 test scenes, one window each at the model's size
    assert sum(count for *_, count, views in arm.scenes) == 4 * 2 + 2
    per_scene = E.windows(SIDE, SIDE, 64, 64 / SIDE, 0.25)     # the demo preset fits each scene to its 64 px window
    total, rows = E.estimate(trainings, _fake(trainings))
    assert total == pytest.approx(5.0 + 100 * 0.5 + 10 * per_scene * 0.01 + 1.0)
    assert rows["pix2pix"].trainings == 1 and rows["pix2pix"].windows == 10 * per_scene
    gan = E.Training("seed0/dcgan", arm.model, 10, generated=50)
    assert E.training_seconds(gan, _fake([gan])[E.model_key(arm.model)])[0] == pytest.approx(5.0 + 5.0 + 0.1)


def test_the_estimate_grows_with_steps_arms_seeds_and_generators(tmp_path):
    base, trainings = _total(_cfg(tmp_path, "--arms", "baseline,classic"))
    assert [t.stage for t in trainings] == ["seed0/baseline", "seed0/classic"]
    assert _total(_cfg(tmp_path, "--arms", "baseline,classic", "--cgan-steps", "600"))[0] > base
    assert _total(_cfg(tmp_path, "--arms", "baseline,classic,copypaste"))[0] > base
    assert _total(_cfg(tmp_path, "--arms", "baseline,classic", "--seeds", "2"))[0] == pytest.approx(2 * base)
    # the gan arm needs the DCGAN and the baseline's pseudo-labels of its scenes; --tta flips labels 4 views
    with_gan, stages = _total(_cfg(tmp_path, "--arms", "classic,gan"))
    assert [t.stage for t in stages] == ["seed0/dcgan", "seed0/baseline", "seed0/classic", "seed0/label", "seed0/gan"]
    assert with_gan > base
    assert _total(_cfg(tmp_path, "--arms", "baseline,classic", "--tta", "flips"))[0] > base
    probes = [t.stage for t in _total(_cfg(tmp_path, "--arms", "classic", "--classic-color", "auto"))[1]]
    assert probes == ["seed0/classic-color-probe", "seed0/classic-plain-probe", "seed0/classic"]
    # larger validation scenes mean more windows
    assert _total(_cfg(tmp_path, "--arms", "baseline", "--data-mode", "tile", "--size", "16"), _counts(side=64))[0] > \
        _total(_cfg(tmp_path, "--arms", "baseline", "--data-mode", "tile", "--size", "16"), _counts(side=32))[0]


def test_a_resumed_run_counts_what_is_left_and_short_runs_skip_it(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, "--arms", "baseline,classic")
    monkeypatch.setattr(E, "time_models", lambda trainings, overlap=0.25: _fake(trainings))
    text = E.estimate_run(cfg, _counts(), lambda stage: {} if stage == "seed0/baseline" else None)
    assert f"labeller: 1 training, {cfg.cgan_steps} steps" in text
    assert "every training of this run is done" in E.estimate_run(cfg, _counts(), lambda stage: {})
    short = _cfg(tmp_path, "--arms", "baseline", "--cgan-steps", "20")
    assert E.estimate_run(short, _counts(), lambda stage: None) is None
    assert "about" in E.estimate_run(short, _counts(), lambda stage: None, always=True)


@pytest.mark.parametrize("seconds, words", [(4, "about 10 s"), (44, "about 40 s"), (600, "about 10 min"),
                                            (5000, "about 83 min"), (7200, "about 2 h"), (9000, "about 2.5 h")])
def test_about(seconds, words):
    assert E.about(seconds) == words


def test_estimate_only_prints_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(E, "time_models", lambda trainings, overlap=0.25: _fake(trainings))
    out = tmp_path / "run"
    argv = ["--demo", "--arms", "baseline,gan", "--out", str(out), "--estimate-only", "--quiet"]
    assert cli_main(main, argv, prog="pipeline.py") == 0
    err = capsys.readouterr().err
    assert "estimate on this machine: about" in err and "DCGAN: 1 training, 500 steps" in err
    assert not out.exists()


@pytest.mark.slow
def test_timing_real_models(tmp_path):
    """The labeller and the mask-to-photo generator are built and timed as the run would train them; the
    estimate from those timings grows with the steps of any training."""
    cfg = _cfg(tmp_path, "--arms", "baseline,masksynth", "--size", "16", "--cgan-width", "0.125",
               "--cgan-batch", "2", "--gan-width", "0.125", "--gan-batch", "2", "--synth-width", "0.125",
               "--precision", "float32")
    trainings = E.pipeline_trainings(cfg, _counts(side=16, pairs=6))
    assert sorted({t.model.model for t in trainings}) == ["pix2pix", "synth"]
    timings = E.time_models(trainings)
    assert len(timings) == 2
    for t in timings.values():
        assert t.setup > 0 and t.step > 0 and t.per_image > 0
    labeller = timings[E.model_key(trainings[-1].model)]
    assert labeller.per_window > 0
    total, _ = E.estimate(trainings, timings)
    for i in range(len(trainings)):
        longer = [dataclasses.replace(t, steps=t.steps + 100) if j == i else t for j, t in enumerate(trainings)]
        assert E.estimate(longer, timings)[0] > total



def test_a_k_fold_run_with_budgets_counts_every_fold_seed_and_budget_with_its_test_scenes(tmp_path):
    from landaug.pipeline.cells import build

    cfg = _cfg(tmp_path, "--arms", "baseline,masksynth", "--folds", "3", "--train-scenes", "4,all")
    counts = _counts(n_scenes=12)
    counts["tests"] = [counts["rest"][:3], counts["rest"][3:6], counts["rest"][6:9]]
    trainings = E.pipeline_trainings(cfg, counts)
    # one training per cell that trains, named as the cell, so a resumed grid counts only what is left
    trains = {c.name for c in build(cfg) if c.fn.rpartition(":")[2] in ("arm", "generator")}
    assert {t.stage for t in trainings} == trains and len(trainings) == 3 * 2 * 3   # folds x budgets x (2 arms, 1 generator)
    fold1 = next(t for t in trainings if t.stage == "fold1/seed0/budget4/baseline")
    assert sum(count for *_, count, views in fold1.scenes[1:]) == 3     # the fold's own 3 test scenes
