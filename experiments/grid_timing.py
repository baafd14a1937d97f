"""Wall time of a small grid of pix2pix trainings under an executor: four seeds of the demo preset's
pix2pix (64 px synthetic scenes, width 0.5, batch 8), each a cell.

Usage: ``python experiments/grid_timing.py --out runs/grid-serial`` and
``python experiments/grid_timing.py --out runs/grid-dask --executor dask --workers 2`` (the scenes are
drawn once into ``--data``, default ``runs/grid-data``). With ``--steps 150``, a few minutes a run on 2
CPU cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landaug.errors import ArgumentParser, cli_main  # noqa: E402
from landaug.files import read_json  # noqa: E402
from landaug.grid import Cell, ExecutorConfig, add_executor_options, marker_path, run_grid  # noqa: E402


def main(argv=None) -> None:
    p = ArgumentParser(prog="grid_timing.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="run folder (new)")
    p.add_argument("--data", type=Path, default=Path("runs/grid-data"), help="demo scenes (drawn if missing)")
    p.add_argument("--cells", type=int, default=4, help="trainings, one seed each (default 4)")
    p.add_argument("--steps", type=int, default=300, help="pix2pix steps of each (default 300)")
    add_executor_options(p)
    args = p.parse_args(argv)
    if not (args.data / "images_CGAN").is_dir():
        from landaug.prepare import PrepareConfig, run

        run(PrepareConfig(demo=60, demo_size=64, size=64, out=args.data, seed=0, progress=False))
    cells = [Cell(f"seed{s}/baseline", "landaug.cgan:main", {"argv": [
        "train", "--data", str(args.data.resolve() / "images_CGAN"), "--out", str(args.out.resolve() / f"seed{s}"),
        "--steps", str(args.steps), "--eval-every", str(args.steps), "--batch", "8", "--width", "0.5",
        "--seed", str(s), "--quiet"]}) for s in range(args.cells)]
    t = time.monotonic()
    result = run_grid(cells, args.out, ExecutorConfig.of(args), progress=False)
    seconds = {c.name: read_json(marker_path(args.out, c.name))["seconds"] for c in cells}
    print(f"{len(cells)} cells, {result.executor['kind']}, TensorFlow threads per cell {result.executor['threads']}: "
          f"{time.monotonic() - t:.1f} s wall; per cell {seconds}")


if __name__ == "__main__":
    sys.exit(cli_main(main))
