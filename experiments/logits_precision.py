"""How many labels change when a trained labeller runs as ``cgan.py predict`` runs it (logits layer at the
compute precision, convolution weights held there, decoder compiled by XLA) instead of as it was trained
(logits layer in float32, one plain graph)? Both label the same photos with the model's own scale, overlap,
TTA and band normalisation; the answer is the share of pixels given the same class.

Usage: python experiments/logits_precision.py MODEL_DIR PHOTO [PHOTO ...] [--checkpoint best], e.g.
    python experiments/logits_precision.py runs/sparcs-kfold/fold0/seed0/baseline/models_CGAN \\
        $(python -c "import json; print(' '.join(f'../shared/sparcs/{s}_photo.png' for s in \\
        json.load(open('runs/sparcs-kfold/folds.json'))['folds'][0]))")
Meaningful under mixed precision (``--precision auto`` on a CPU with bfloat16 or a GPU); in float32 both
ways compute the same network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landaug.errors import UserError, cli_main  # noqa: E402


def compare(model: Path, photos: list[Path], checkpoint: str) -> tuple[int, int]:
    """(pixels labelled the same, pixels) over ``photos``, one line per photo on the way."""
    from landaug.cgan.infer import SceneLabeller
    from landaug.imgio import read_model_photo

    now = SceneLabeller.load(model, checkpoint)
    as_trained = SceneLabeller.load(model, checkpoint, as_trained=True)
    print(f"logits layer: {now.gen.get_layer('head').compute_dtype} (predict) against "
          f"{as_trained.gen.get_layer('head').compute_dtype} (as trained); TTA {now.tta}")
    same = total = 0
    for path in photos:
        photo = read_model_photo(path, now.stats).data
        a, _ = as_trained(photo)
        b, _ = now(photo)
        same, total = same + int((a == b).sum()), total + a.size
        print(f"{path.name}: {(a == b).mean():.6f}")
    return same, total


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("photos", type=Path, nargs="+")
    ap.add_argument("--checkpoint", default="best")
    args = ap.parse_args(argv)
    for p in [args.model / "model.json", *args.photos]:
        if not p.is_file():
            raise UserError(p, "not found")
    same, total = compare(args.model, args.photos, args.checkpoint)
    print(f"all {len(args.photos)} photos: {same}/{total} = {same / total:.6f} of the labels the same")


if __name__ == "__main__":
    sys.exit(cli_main(main, sys.argv[1:], prog="logits_precision.py"))
