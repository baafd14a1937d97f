"""Read the runs of experiments/synth_choice.sh and print its markdown table, best candidate first.

Per candidate: the generator's image scores against each seed's validation photos (means over seeds),
its training speed, and the segmenter's validation mIoU with its rendered pairs (the mean of the last
five evaluations) per seed and their mean, which ranks the candidates.
Usage: ``python experiments/synth_choose.py runs/synthchoice "name|generator|options" ...``
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "_", name)


def last5(model_dir: Path) -> float:
    with open(model_dir / "log.csv", newline="") as f:
        vals = [float(r["val_miou"]) for r in csv.DictReader(f) if r["val_miou"]]
    return float(np.mean(vals[-5:]))


def steps_per_second(model_dir: Path) -> float:
    with open(model_dir / "losses.csv", newline="") as f:
        rates = [float(r["steps_per_sec"]) for r in csv.DictReader(f)][1:]   # the first includes tracing
    return float(np.mean(rates))


def generator_scores(seeds: list[Path], model: str) -> dict:
    reports = [json.loads((s / f"synth_{slug(model)}" / "score" / "score.json").read_text()) for s in seeds]
    div = [r["diversity_same_layout"] for r in reports]
    return {"swd": np.mean([r["swd"]["mean"] for r in reports]),
            "hist": np.mean([r["histogram"]["mean"] for r in reports]),
            "div": np.mean([d["rendered"] for d in div]),
            "real_between": np.mean([d["real_different_scenes"] for d in div]),
            "real_within": np.mean([d["real_same_scene"] for d in div]),
            "sps": np.mean([steps_per_second(s / f"synth_{slug(model)}") for s in seeds])}


def main(root: Path, arms: list[str]) -> None:
    seeds = sorted(root.glob("seed*"), key=lambda p: int(p.name[4:]))
    rows = [("none (baseline)", None, [last5(s / "cgan_baseline") for s in seeds])]
    for spec in arms:
        name, model, _ = spec.split("|")
        rows.append((name, generator_scores(seeds, model), [last5(s / f"cgan_{slug(name)}") for s in seeds]))
    real = next(g for _, g, _ in rows if g)
    print(f"Real photos of one class differ by {real['real_between']:.4f} between scenes and "
          f"{real['real_within']:.4f} within a scene (mean over seeds).\n")
    head = ["candidate", "steps/s", "SWD x1e3", "histogram", "diversity_same_layout",
            *[f"val mIoU {s.name}" for s in seeds], "mean"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for rank, (name, g, vals) in enumerate(sorted(rows, key=lambda r: -np.mean(r[2]))):
        gen = (["—"] * 4 if g is None else
               [f"{g['sps']:.1f}", f"{g['swd']:.1f}", f"{g['hist']:.4f}", f"{g['div']:.4f}"])
        mean = f"{np.mean(vals):.3f}"
        print("| " + " | ".join([name, *gen, *[f"{v:.3f}" for v in vals], f"**{mean}**" if rank == 0 else mean]) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
