"""pipeline.py end to end on tiny synthetic scenes: run folder, report, resume, no overwriting."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--demo", "--demo-scenes", "12", "--size", "32", "--arms", "baseline,gan", "--seeds", "2",
        "--cgan-epochs", "2", "--cgan-batch", "4", "--cgan-width", "0.125", "--gan-steps", "4",
        "--gan-batch", "4", "--gan-width", "0.125", "--n-generated", "4", "--quiet"]


def pipeline(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "pipeline.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("pipe")
    proc = pipeline(*TINY, "--out", "runs/a", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def test_run_folder_holds_every_stage_and_the_summary(first_run):
    cwd, proc = first_run
    run = cwd / "runs/a"
    for seed in (0, 1):
        sd = run / f"seed{seed}"
        assert (sd / "models_GAN/config.json").is_file()
        assert len(list((sd / "generated_images").glob("*.png"))) == 4
        assert len(list((sd / "predict_CGAN/b").glob("*.png"))) + json.loads(
            (run / ".stages" / f"seed{seed}__label.json").read_text())["dropped"] == 4
        for arm in ("baseline", "gan"):
            assert (sd / arm / "models_CGAN/config.json").is_file()
            test_stems = sorted(p.stem for p in (run / "data/images_CGAN/test/a").iterdir())
            assert sorted(p.stem for p in (sd / arm / "Pred_test").glob("*.png")) == test_stems
    report = json.loads((run / "eval_report/report.json").read_text())
    assert list(report["sets"]) == ["baseline", "gan"]
    assert report["sets"]["gan"]["n_runs"] == 2 and report["sets"]["baseline"]["n_runs"] == 2
    assert "gan vs baseline" in report["comparisons"]
    summary = (run / "summary.md").read_text()
    assert "| baseline |" in summary and "| gan |" in summary and "python pipeline.py --demo" in summary
    land = next(line for line in summary.splitlines() if line.startswith("| land |"))
    assert land.count("±") == 2 and "%" in land, land
    assert json.loads((run / "config.json").read_text())["config"]["seeds"] == 2
    assert "seed 2/2" in proc.stderr and "arm gan" in proc.stderr
    assert "%|" not in proc.stderr, "--quiet still drew a progress bar"
    # Same epochs for every arm by default: the arm with the pseudo-labelled scenes makes more steps.
    steps = {arm: json.loads((run / ".stages" / f"seed0__{arm}.json").read_text())["steps"] for arm in ("baseline", "gan")}
    assert steps["gan"] > steps["baseline"] > 0
    assert "| pix2pix steps |" in summary


def test_resume_skips_finished_stages_and_reruns_the_rest(first_run):
    cwd, _ = first_run
    run = cwd / "runs/a"
    stages = run / ".stages"
    (stages / "eval.json").unlink()
    kept = (stages / "seed0__baseline.json").read_text()
    proc = pipeline("--resume", "--out", "runs/a", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("done earlier, skipped") >= 7
    assert "evaluate the arms" in proc.stderr and (stages / "eval.json").is_file()
    assert (stages / "seed0__baseline.json").read_text() == kept


def test_a_second_run_never_overwrites_the_first(first_run):
    cwd, _ = first_run
    before = (cwd / "runs/a/summary.md").read_text()
    proc = pipeline(*TINY, "--out", "runs/a", cwd=cwd)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert (cwd / "runs/a/summary.md").read_text() == before


def test_resume_refuses_contradicting_options(first_run):
    cwd, _ = first_run
    proc = pipeline("--resume", "--out", "runs/a", "--seeds", "3", cwd=cwd)
    assert proc.returncode == 2 and "--seeds" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bad_options_fail_before_any_work(tmp_path):
    proc = pipeline("--demo", "--arms", "baseline,magic", cwd=tmp_path)
    assert proc.returncode == 2 and "magic" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_cgan_steps_gives_every_arm_the_same_optimizer_steps(first_run, tmp_path):
    from landaug.pipeline import PipelineConfig, Run, cgan_schedule

    cwd, _ = first_run
    run_dir = cwd / "runs/a"
    extra = run_dir / "seed0" / "predict_CGAN"
    n_extra = len(list((extra / "a").glob("*.png")))
    by_epochs = Run(PipelineConfig(out=run_dir, cgan_epochs=2, cgan_batch=4, val_fraction=0.1))
    base, more = cgan_schedule(by_epochs, 0, []), cgan_schedule(by_epochs, 0, [extra])
    assert base["epochs"] == more["epochs"] == 2
    assert more["train_pairs"] == base["train_pairs"] + n_extra
    assert base["steps"] == 2 * (base["train_pairs"] // 4)
    by_steps = Run(PipelineConfig(out=run_dir, cgan_steps=20, cgan_batch=2, val_fraction=0.1))
    a, b = cgan_schedule(by_steps, 0, []), cgan_schedule(by_steps, 0, [extra])
    for s in (a, b):
        per_epoch = s["train_pairs"] // 2
        assert s["steps"] >= 20 and s["steps"] - per_epoch < 20 and s["steps"] % per_epoch == 0
    assert a["epochs"] > b["epochs"]


def test_presets_set_cgan_steps_and_the_option_overrides_them(tmp_path):
    from landaug.pipeline import build_parser, config_from_args

    def cfg(*argv):
        argv = ["--demo", "--out", str(tmp_path / "r"), *argv]
        return config_from_args(build_parser().parse_args(argv), argv)

    assert cfg().cgan_steps == 520
    assert cfg("--preset", "cpu").cgan_steps == 1280
    assert cfg("--preset", "cpu", "--cgan-steps", "0").cgan_steps == 0
    assert cfg("--preset", "paper").cgan_steps == 0
