"""The bookkeeping of experiments/segmenter_sweep.sh: splits, finished candidates, each stage's winner, the table.

A candidate is a folder holding one ``cgan.py train`` run per seed (``seed0/``, ``seed1/``). Its score is
the mean validation mIoU of its last five evaluations (``sweep_choose.scores``), averaged over the seeds;
a stage's winner is the candidate with the highest score (for the length stage, among those whose
training took at most ``--budget`` minutes, the slowest seed's CPU time over the cores). The winners go to
``RUN/chosen.json`` with their options, which the next stage starts from.

Usage: ``python experiments/segmenter_choose.py split DATA RUN`` (write RUN/seed{0,1}/split.json from a stage-1
folder, or check that DATA has the same scenes); ``... finished MODEL`` (exit 0 when that training is complete);
``... pick RUN STAGE CANDIDATE... [--budget MIN]`` (prints the winner's options, one line);
``... winner RUN STAGE`` (the winning candidate of that stage, or of the last stage whose name starts so); ``... table RUN``
(markdown, per-seed columns).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep_choose import scores  # noqa: E402  (experiments/ is the script's folder)

from landaug.config import load_config  # noqa: E402
from landaug.errors import UserError, cli_main  # noqa: E402
from landaug.files import write_json  # noqa: E402
from landaug.split import draw_split, read_split, write_split  # noqa: E402

SEEDS = (0, 1)
VAL_FRACTION = 0.1          # the pipeline's default: 6 of the 64 non-test SPARCS scenes
CHOSEN = "chosen.json"
# The cgan.py train options a candidate is described by; the next stage starts from the winner's values.
OPTIONS = ("data", "width", "labeller", "loss", "lr_schedule", "lr", "beta1", "dropout", "upsample", "tta", "steps",
           "eval_every")


def split(data: Path, run: Path) -> None:
    cfg = load_config(Path(data) / "images_CGAN" / "config.json")
    for seed in SEEDS:
        path = Path(run) / f"seed{seed}" / "split.json"
        if not path.is_file():
            write_split(path, draw_split(cfg["train_scenes"], cfg["test_scenes"], VAL_FRACTION, seed))
        drawn = read_split(path)
        if sorted(drawn["train"] + drawn["val"]) != sorted(cfg["train_scenes"]) or \
                sorted(drawn["test"]) != sorted(cfg["test_scenes"]):
            raise UserError(data, f"does not hold the scenes of {path}: prepare it from the same SPARCS folder "
                                  "and test list")


def finished(model: Path) -> bool:
    """The run reached its last step: its log's last evaluation is at the total it was started for."""
    try:
        total = int(load_config(Path(model) / "config.json")["steps"])
        with open(Path(model) / "log.csv", newline="") as f:
            steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("step")]
    except (OSError, KeyError, ValueError, UserError):
        return False
    return bool(steps) and steps[-1] == total


def minutes(model: Path) -> float:
    """Minutes the training (steps and validations, from its log) takes on this machine when it runs alone:
    its CPU time over the cores. The wall time of a shared machine says more about the other jobs."""
    with open(Path(model) / "log.csv", newline="") as f:
        return sum(float(r["cpu_seconds"]) for r in csv.DictReader(f)) / 60 / (os.cpu_count() or 1)


def describe(run: Path, name: str) -> dict:
    """A candidate's options, per-seed scores, mean score and slowest seed's minutes."""
    folder = Path(run) / name
    missing = [s for s in SEEDS if not finished(folder / f"seed{s}")]
    if missing:
        raise UserError(folder / f"seed{missing[0]}", "has not finished: run experiments/segmenter_sweep.sh again")
    cfg = load_config(folder / f"seed{SEEDS[0]}" / "config.json")
    per_seed = {s: scores(folder / f"seed{s}") for s in SEEDS}
    return {"name": name, "options": {k: cfg["config"][k] for k in OPTIONS},
            "last5": {str(s): per_seed[s][0] for s in SEEDS}, "best": {str(s): per_seed[s][1] for s in SEEDS},
            "score": sum(v[0] for v in per_seed.values()) / len(SEEDS),
            "minutes": max(minutes(folder / f"seed{s}") for s in SEEDS)}


def as_argv(options: dict) -> list[str]:
    return [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def pick(run: Path, stage: str, names: list[str], budget: float | None) -> list[str]:
    found = [describe(run, n) for n in names]
    allowed = [c for c in found if budget is None or c["minutes"] <= budget] or found
    winner = max(allowed, key=lambda c: c["score"])
    path = Path(run) / CHOSEN
    chosen = json.loads(path.read_text()) if path.is_file() else {}
    # A stage decided again (a rerun) replaces its record and every later stage's, which started from it.
    chosen = {k: v for k, v in chosen.items() if k < stage}
    chosen[stage] = {"winner": winner["name"], "options": winner["options"], "budget_minutes": budget,
                     "candidates": found}
    write_json(path, chosen)
    return as_argv(winner["options"])


def winner(run: Path, prefix: str) -> str:
    chosen = json.loads((Path(run) / CHOSEN).read_text())
    if prefix in chosen:
        return chosen[prefix]["winner"]
    stages = sorted(k for k in chosen if k.startswith(prefix))
    if not stages:
        raise UserError(Path(run) / CHOSEN, f"names no stage {prefix}: run experiments/segmenter_sweep.sh again")
    return chosen[stages[-1]]["winner"]


def table(run: Path) -> str:
    chosen = json.loads((Path(run) / CHOSEN).read_text())
    lines = ["| stage | candidate | labeller | loss | learning rate | Adam beta_1 | dropout | upsample | width | data | "
             "TTA | steps | seed 0 | seed 1 | mean of last 5 | best (seed 0 / 1) | minutes |", "|" + "---|" * 17]
    for stage, rec in chosen.items():
        for c in rec["candidates"]:
            o = c["options"]
            mark = "**" if c["name"] == rec["winner"] else ""
            lines.append(f"| {stage} | {mark}{c['name']}{mark} | {o['labeller']} | {o['loss']} | {o.get('lr', 2e-4):g} {o['lr_schedule']} | "
                         f"{o.get('beta1', 0.5):g} | {o.get('dropout', 0.5):g} | {o['upsample']} | {o['width']} | {Path(o['data']).parent.name} | {o['tta']} | "
                         f"{o['steps']} | "
                         f"{c['last5']['0']:.4f} | {c['last5']['1']:.4f} | {mark}{c['score']:.4f}{mark} | "
                         f"{c['best']['0']:.4f} / {c['best']['1']:.4f} | {c['minutes']:.1f} |")
    final = list(chosen.values())[-1]["options"]
    lines += ["", "Chosen: `" + " ".join(as_argv({k: v for k, v in final.items() if k != "data"})) +
              f"` on `{Path(final['data']).parent.name}` data"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="segmenter_choose.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split")
    s.add_argument("data", type=Path)
    s.add_argument("run", type=Path)
    f = sub.add_parser("finished")
    f.add_argument("model", type=Path)
    k = sub.add_parser("pick")
    k.add_argument("run", type=Path)
    k.add_argument("stage")
    k.add_argument("candidates", nargs="+")
    k.add_argument("--budget", type=float, default=None, metavar="MIN",
                   help="only candidates whose training took at most MIN minutes (slowest seed) may win")
    w = sub.add_parser("winner")
    w.add_argument("run", type=Path)
    w.add_argument("prefix")
    t = sub.add_parser("table")
    t.add_argument("run", type=Path)
    args = p.parse_args(argv)
    if args.command == "split":
        split(args.data, args.run)
    elif args.command == "finished":
        return 0 if finished(args.model) else 1
    elif args.command == "pick":
        print(" ".join(pick(args.run, args.stage, args.candidates, args.budget)))
    elif args.command == "winner":
        print(winner(args.run, args.prefix))
    else:
        print(table(args.run))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main, sys.argv[1:], prog="segmenter_choose.py"))
