"""Which scenes carry one class's gain of an arm over a reference in a K-fold run: per test scene, the
class's truth pixels, the share of them each arm labels as that class, the pixels the arm finds more
(true positives), and, when the arm finds more over all scenes, each scene's part of that net gain. A
pooled IoU gain can rest on a few scenes; this says on which.

Usage: python experiments/class_gain_by_scene.py RUN_DIR BUDGET CLASS ARM REFERENCE [--top N], e.g.
    python experiments/class_gain_by_scene.py runs/sparcs-budgets 24 water masksynth classic
(BUDGET "all" for a run without label budgets.) Reads the run's own stage-1 masks (``data/images_CGAN/
scenes/b``) and each fold's predictions (``fold<F>/seed<S>/[budget<B>/]<arm>/Pred_test``), every seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landaug.classes import ClassRegistry, load_registry  # noqa: E402
from landaug.errors import UserError, cli_main  # noqa: E402
from landaug.imgio import read_label  # noqa: E402


def found(run: Path, budget: str, arm: str, index: int, registry: ClassRegistry) -> dict[tuple[str, str], int]:
    """(seed, scene) -> pixels of class ``index`` that ``arm`` labels as that class."""
    place = "" if budget == "all" else f"budget{budget}/"
    preds = sorted(run.glob(f"fold*/seed*/{place}{arm}/Pred_test/*.png"))
    if not preds:
        raise UserError(run, f"has no predictions of arm {arm} at budget {budget}")
    out = {}
    for p in preds:
        seed = p.parents[2 if budget == "all" else 3].name
        truth = truth_mask(run, p.stem, registry) == index
        out[(seed, p.stem)] = int(((read_label(p, registry, allow_ignore=True) == index) & truth).sum())
    return out


_TRUTH: dict[str, np.ndarray] = {}


def truth_mask(run: Path, scene: str, registry: ClassRegistry) -> np.ndarray:
    if scene not in _TRUTH:
        _TRUTH[scene] = read_label(run / "data" / "images_CGAN" / "scenes" / "b" / f"{scene}.png", registry,
                                   allow_ignore=True)
    return _TRUTH[scene]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="class_gain_by_scene.py", description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("budget")
    p.add_argument("cls", metavar="CLASS")
    p.add_argument("arm")
    p.add_argument("reference")
    p.add_argument("--top", type=int, default=6, help="scenes listed, largest part of the gain first (default 6)")
    args = p.parse_args(argv)
    registry = load_registry(args.run / "data" / "images_CGAN" / "classes.json")
    names = registry.names
    if args.cls not in names:
        raise UserError(args.run / "data" / "images_CGAN" / "classes.json", f"has no class {args.cls!r}: "
                        f"one of {', '.join(names)}")
    index = names.index(args.cls)
    arm, ref = (found(args.run, args.budget, a, index, registry) for a in (args.arm, args.reference))
    keys = sorted(set(arm) & set(ref))
    if set(arm) != set(ref):
        # a run still training: only the scene tests both arms have labelled are compared
        print(f"({len(set(arm) ^ set(ref))} scene tests labelled by one of the two arms only are left out)")
    gains = {k: arm[k] - ref[k] for k in keys}
    net = sum(gains.values())
    truth = {k: int((truth_mask(args.run, k[1], registry) == index).sum()) for k in keys}
    print(f"{args.cls}, budget {args.budget}: {len(keys)} scene tests, {sum(v > 0 for v in truth.values())} with "
          f"{args.cls}; {args.arm} finds {sum(arm.values())} of its {sum(truth.values())} pixels, {args.reference} "
          f"{sum(ref.values())}; more found in {sum(g > 0 for g in gains.values())} scene tests, fewer in "
          f"{sum(g < 0 for g in gains.values())}")
    # A share of the net gain only means something when there is a net gain.
    print(f"| seed | scene | {args.cls} pixels | {args.arm} finds | {args.reference} finds | pixels more found | "
          f"part of the net gain ({net}) |")
    print("|---|---|---|---|---|---|---|")
    for k in sorted(keys, key=lambda k: -gains[k])[:args.top]:
        share = f"{gains[k] / net:.0%}" if net > 0 else "–"
        print(f"| {k[0]} | {k[1]} | {truth[k]} | {arm[k] / max(truth[k], 1):.0%} | {ref[k] / max(truth[k], 1):.0%} | "
              f"{gains[k]} | {share} |")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main, sys.argv[1:], prog="class_gain_by_scene.py"))
