"""Read the validation sweep of experiments/sparcs_sweep.sh and print the options it chooses.

Each candidate is scored by the mean validation mIoU of its last five evaluations (the best single
evaluation is printed beside it, not used). The share is chosen by the sum over the three synthetic arms.
Usage: ``python experiments/sweep_choose.py runs/sweep``
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def scores(model_dir: Path) -> tuple[float, float]:
    """(mean of the last five validation mIoUs, best validation mIoU) from a pix2pix run's log.csv."""
    with open(model_dir / "log.csv", newline="") as f:
        vals = [float(r["val_miou"]) for r in csv.DictReader(f) if r["val_miou"]]
    return sum(vals[-5:]) / len(vals[-5:]), max(vals)


def main(root: Path) -> None:
    table = {f"{arm} share 0.5": scores(root / "seed0" / arm / "models_CGAN")
             for arm in ("baseline", "gan", "paired", "masksynth")}
    for name in ("gan", "paired", "masksynth"):
        table[f"{name} share 0.25"] = scores(root / "sw" / f"{name}_s025")
        table[f"{name} appended"] = scores(root / "sw" / f"{name}_append")
    copypaste = {d.name: scores(d) for d in sorted((root / "sw").glob("cp_*"))}
    table.update(copypaste)
    for name, (last5, best) in table.items():
        print(f"{name:28s} last5 {last5:.4f}  best {best:.4f}")
    share = {s: sum(table[f"{n} share {s}"][0] for n in ("gan", "paired", "masksynth")) for s in ("0.25", "0.5")}
    chosen = max(share, key=share.get)
    best_cp = max(copypaste, key=lambda k: copypaste[k][0])
    _, p, n, r = best_cp.split("_")
    print(f"--synthetic-share {chosen} --copypaste-p {p[1:]} --copypaste-n {n[1:]} --copypaste-rarity {r[1:]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
