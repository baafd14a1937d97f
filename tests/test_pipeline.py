"""pipeline.py end to end on tiny synthetic scenes: run folder, report, resume, no overwriting."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
# The paper's DCGAN arm runs end to end in test_geotiff_stages (and trains on NaN gaps in test_nodata); here
# a cheap second arm.
TINY = ["--demo", "--demo-scenes", "12", "--demo-size", "32", "--size", "32", "--arms", "baseline,classic",
        "--seeds", "2", "--cgan-steps", "6", "--evaluations", "2", "--cgan-batch", "4", "--cgan-width", "0.125",
        "--quiet"]


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
        for arm in ("baseline", "classic"):
            assert (sd / arm / "models_CGAN/config.json").is_file()
            test_stems = sorted(p.stem for p in (run / "data/images_CGAN/test/a").iterdir())
            assert sorted(p.stem for p in (sd / arm / "Pred_test").glob("*.png")) == test_stems
    report = json.loads((run / "eval_report/report.json").read_text())
    assert list(report["sets"]) == ["baseline", "classic"]
    assert report["sets"]["classic"]["n_runs"] == 2 and report["sets"]["baseline"]["n_runs"] == 2
    assert "classic vs baseline" in report["comparisons"]
    summary = (run / "summary.md").read_text()
    assert "| baseline |" in summary and "| classic |" in summary and "python pipeline.py --demo" in summary
    land = next(line for line in summary.splitlines() if line.startswith("| land |"))
    assert land.count("±") == 2 and "%" in land, land
    assert json.loads((run / "config.json").read_text())["config"]["seeds"] == 2
    assert "seed 2/2 · arm classic: step 6/6, validation mIoU" in (run / "logs/seed1/classic.log").read_text()
    assert "seed1/classic done in" in (run / "grid.log").read_text()
    assert "the grid: 8 cells: 1 stage-1 preparation, 2 splits, 4 pix2pix trainings of 6 steps, 1 evaluation" \
        in proc.stderr
    assert "%|" not in proc.stderr, "--quiet still drew a progress bar"
    assert json.loads((run / "config.json").read_text())["executor"]["kind"] == "serial"
    # --cgan-steps: every arm makes exactly the same optimizer steps, whatever its training set.
    for seed in (0, 1):
        steps = {arm: json.loads((run / ".stages" / f"seed{seed}__{arm}.json").read_text())["steps"]
                 for arm in ("baseline", "classic")}
        assert set(steps.values()) == {6}
    assert "| labeller steps |" in summary
    # the machine line is where the trainings ran, as their markers recorded it, GPUs included
    machine = json.loads((run / ".stages/seed0__baseline.json").read_text())["ran_on"]["machine"]
    assert "GPUs not listed" not in machine and f"Machine: {machine}. Wall time" in summary


def test_the_summary_names_where_the_trainings_ran_without_importing_tensorflow():
    """The pipeline's own process never imports TensorFlow (seconds of CPU for a device list): the machine
    line comes from the cells' markers, a cluster's machines each with its count of cells."""
    code = """if True:
        import sys
        from landaug.pipeline import cli
        from landaug.pipeline.summary import machine_words
        a, b, split = ("A, no GPU", "B, GPUs: /gpu:0", "A, GPUs not listed")
        cells = {"s0/x": {"ran_on": {"machine": a}}, "s0/y": {"ran_on": {"machine": b}},
                 "s1/x": {"ran_on": {"machine": b}}, "s0/split": {"ran_on": {"machine": split}}, "old": {}}
        print(machine_words(cells))
        print(machine_words({"s0/split": {"ran_on": {"machine": split}}}))
        print("tensorflow" in sys.modules)
    """
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Machines: B, GPUs: /gpu:0 (2 cells); A, no GPU (1 cell)",
                                        "Machine: A, GPUs not listed", "False"]


def test_resume_skips_finished_stages_and_reruns_the_rest(first_run):
    cwd, _ = first_run
    run = cwd / "runs/a"
    stages = run / ".stages"
    (stages / "eval.json").unlink()
    kept = (stages / "seed0__baseline.json").read_text()
    before = (run / "grid.log").read_text()
    proc = pipeline("--resume", "--out", "runs/a", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "7 finished before, 1 left" in proc.stderr
    now = (run / "grid.log").read_text()[len(before):]
    assert "8 cells (7 finished before)" in now and "eval done in" in now and "seed0/baseline" not in now
    assert (stages / "eval.json").is_file() and (stages / "seed0__baseline.json").read_text() == kept


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


def test_no_validation_or_test_scene_reaches_any_training_input(first_run):
    """Every training stage records the real scenes it learned from; none is a validation or test scene
    (tests/test_kfold.py makes the same check on every place of a K-fold run with label budgets, and
    tests/test_geotiff_stages.py on the DCGAN arm's generator and pseudo-labeller)."""
    from conftest import assert_learned_only_from_split

    cwd, _ = first_run
    run = cwd / "runs/a"
    for seed in (0, 1):
        assert_learned_only_from_split(run / f"seed{seed}", ["baseline", "classic"], [])
    a, b = (json.loads((run / f"seed{s}" / "split.json").read_text())["val"] for s in (0, 1))
    assert a != b or len(a) == 0


def test_validation_pixels_never_move_the_band_normalisation(tmp_path):
    """Multi-band scenes (the 3-band run above keeps x / 127.5 - 1): the normalisation a seed's stages use is
    learned from its training scenes, so brightening a validation scene changes nothing, a training scene
    does."""
    from landaug import cgan
    from landaug.bands import BandStats
    from landaug.classes import SPARCS
    from landaug.cgan.data import training_data
    from landaug.imgio import list_images, read_photo, write_photo
    from landaug.pipeline.options import PipelineConfig
    from landaug.pipeline.stages import Run, stage_split
    from landaug.prepare import PrepareConfig, run as prepare

    prepare(PrepareConfig(demo=8, demo_bands=4, size=32, out=tmp_path / "data", progress=False))
    run = Run(PipelineConfig(out=tmp_path, val_fraction=0.25))

    def seed_stats(seed=0):
        stage_split(run, seed)
        return BandStats.load(tmp_path / f"seed{seed}" / "bands.json")

    def brighten(scene):
        for folder in ("train", "scenes"):
            for photo in list_images(tmp_path / "data" / "images_CGAN" / folder / "a"):
                if photo.stem.split("__")[0] == scene:
                    r = read_photo(photo)
                    write_photo(photo, (r.data.astype("uint32") * 3).clip(0, 65535).astype(r.dtype), r.georef,
                                r.nodata, r.band_names)

    before = seed_stats()
    split = json.loads((tmp_path / "seed0" / "split.json").read_text())
    assert before.dtype == "uint16" and split["val"]
    cfg = cgan.resolve(cgan.TrainConfig(data=tmp_path / "data" / "images_CGAN", split=tmp_path / "seed0" / "split.json",
                                        progress=False))
    assert training_data(cfg, SPARCS).stats.to_json() == before.to_json()
    brighten(split["val"][0])
    assert seed_stats().to_json() == before.to_json()
    (tmp_path / "seed0" / "bands.json").unlink()           # what a stage given the split learns on its own
    assert training_data(cfg, SPARCS).stats.to_json() == before.to_json()
    brighten(split["train"][0])
    assert seed_stats().high != before.high


def test_options_are_checked_before_anything_is_written(tmp_path):
    for args, needle in ((["--diffaugment", "colr"], "--diffaugment"), (["--min-confidence", "2"], "--min-confidence"),
                         (["--cgan-batch", "64", "--demo-scenes", "12"], "--cgan-batch 64"),
                         (["--copypaste-p", "1.5", "--arms", "copypaste"], "--copypaste-p"),
                         (["--out", "/proc/nope/run"], "cannot be created")):
        proc = pipeline("--demo", *args, cwd=tmp_path)
        assert proc.returncode == 2 and needle in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not (tmp_path / "runs").exists()


def test_presets_set_cgan_steps_and_the_option_overrides_them(tmp_path):
    from landaug.pipeline import build_parser, config_from_args

    def cfg(*argv):
        argv = ["--demo", "--out", str(tmp_path / "r"), *argv]
        return config_from_args(build_parser().parse_args(argv), argv)

    assert cfg().cgan_steps == 240
    assert cfg("--preset", "cpu").cgan_steps == 2560
    assert cfg("--preset", "cpu", "--cgan-steps", "0").cgan_steps == 0
    assert cfg("--preset", "paper").cgan_steps == 0


def test_help_says_what_each_preset_sets_every_option_it_sets():
    from landaug.pipeline import build_parser
    from landaug.pipeline.presets import PRESETS

    parser = build_parser()
    shown = {a.dest: " ".join((a.help or "").split()) for a in parser._actions}
    for key in PRESETS["demo"]:
        words = ", ".join(f"{name}: {v[key]:g}" if isinstance(v[key], float) else f"{name}: {v[key]}"
                          for name, v in PRESETS.items())
        assert shown[key].endswith(f"({words})"), (key, shown[key])
    assert "(demo: 240, cpu: 2560, paper: 0)" in shown["cgan_steps"]


def test_augmentation_arms_run_end_to_end_at_a_synthetic_share(tmp_path):
    """The paired and mask-to-photo arms at batch 1 (mask-to-photo with classic augmentation, the composed
    form), a synthetic share of 0.25 honoured by drawing a synthetic pair at one step in four. (The
    copy-paste arm end to end: test_resume_can_add_arms.)"""
    args = ["--demo", "--demo-scenes", "10", "--demo-size", "32", "--size", "32", "--seeds", "1",
            "--arms", "baseline,paired,classic+masksynth",
            "--synthetic-share", "0.25", "--cgan-steps", "4", "--evaluations", "1", "--cgan-batch", "1",
            "--cgan-width", "0.125", "--gan-steps", "2", "--gan-batch", "4", "--gan-width", "0.125",
            "--synth-steps", "2", "--synth-width", "0.125", "--n-generated", "4", "--quiet", "--out", "r"]
    proc = pipeline(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "r"
    report = json.loads((run / "eval_report/report.json").read_text())
    assert list(report["sets"]) == ["baseline", "paired", "classic+masksynth"]
    # no classic arm ran, so baseline is the only reference every arm is compared with
    assert sorted(report["comparisons"]) == sorted(f"{arm} vs baseline" for arm in report["sets"] if arm != "baseline")
    summary = (run / "summary.md").read_text()
    for arm in ("paired", "classic+masksynth"):
        cfg = json.loads((run / "seed0" / arm / "models_CGAN" / "config.json").read_text())
        assert cfg["config"]["synthetic_share"] == 0.25 and cfg["batch_counts"] == [0.75, 0.25]
        assert cfg["synthetic_share_realised"] == 0.25
        recipe = next(line for line in summary.splitlines() if line.startswith(f"| {arm} | `--augment"))
        assert "share 0.25 of the pairs drawn over training (realised 0.250, at batch 1)" in recipe, recipe
    layouts = json.loads((run / "seed0" / "generated_synth" / "config.json").read_text())
    synth_cfg = json.loads((run / "seed0" / "models_synth" / "config.json").read_text())
    split = json.loads((run / "seed0" / "split.json").read_text())
    assert set(synth_cfg["train_scenes"]) == set(split["train"]) and layouts
    assert len(list((run / "seed0" / "generated_synth" / "a").glob("*.png"))) == 4
    # every arm the same optimizer steps; the paired arm's real pairs plus its 4 synthetic ones; no generator
    # learned from a validation or test scene
    from conftest import assert_learned_only_from_split

    arms = list(report["sets"])
    assert {json.loads((run / ".stages" / f"seed0__{arm}.json").read_text())["steps"] for arm in arms} == {4}
    train_pairs = {arm: json.loads((run / "seed0" / arm / "models_CGAN" / "config.json").read_text())["train_pairs"]
                   for arm in ("baseline", "paired")}
    assert train_pairs["paired"] == train_pairs["baseline"] + 4
    assert_learned_only_from_split(run / "seed0", arms, ["models_GAN_paired", "models_synth"])


def test_resume_can_add_arms(first_run):
    """A finished run grows by an arm: only the new arm trains, and the evaluation covers all of them."""
    cwd, _ = first_run
    run = cwd / "runs/a"
    kept = (run / ".stages" / "seed0__baseline.json").read_text()
    before = (run / "grid.log").read_text()
    proc = pipeline("--resume", "--out", "runs/a", "--arms", "baseline,classic,copypaste", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    now = (run / "grid.log").read_text()[len(before):]
    assert "seed0/copypaste started" in now and "seed1/copypaste started" in now and "seed0/baseline" not in now
    assert (run / ".stages" / "seed0__baseline.json").read_text() == kept
    report = json.loads((run / "eval_report/report.json").read_text())
    assert list(report["sets"]) == ["baseline", "classic", "copypaste"]
    assert "copypaste vs classic" in report["comparisons"]
    for seed in (0, 1):
        cp = json.loads((run / f"seed{seed}" / "copypaste" / "models_CGAN" / "config.json").read_text())
        assert cp["config"]["copypaste_p"] == 0.25 and sum(cp["copypaste"]["components"]) > 0
    assert json.loads((run / "config.json").read_text())["config"]["arms"] == ["baseline", "classic", "copypaste"]
    reproduce = (run / "summary.md").read_text().split("```bash\n", 1)[1].split("\n", 1)[0]
    assert reproduce.endswith("--arms baseline,classic,copypaste") and reproduce.count("--arms") == 1, reproduce


def test_the_masksynth_generator_is_an_option_of_the_run(tmp_path):
    from landaug.pipeline import build_parser, config_from_args
    from landaug.pipeline.options import synth_config

    out = tmp_path / "r"
    for argv, generator in ((["--demo", "--out", str(out), "--arms", "masksynth"], "pix2pix"),
                            (["--demo", "--out", str(out), "--arms", "masksynth", "--synth-generator", "oasis"], "oasis")):
        cfg = config_from_args(build_parser().parse_args(argv), argv)
        assert synth_config(cfg, out / "data", out / "models_synth", None, 0).generator == generator
