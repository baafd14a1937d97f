"""``pipeline.py``: stage 1, each seed's split, the generators, one labeller per arm and seed, and the
evaluation that compares the arms on the same whole test scenes.

Arms (``--arms``): ``baseline`` (jitter only, the paper's "before"), ``classic`` (plus the eight
flips/rotations), ``classic+weights`` (plus inverse-frequency class weights), ``copypaste`` and
``classic+copypaste`` (rare-class copy-paste), ``gan`` (the paper's "after": DCGAN scenes pseudo-labelled by
the baseline), ``paired`` (scenes synthesised with their labels), ``masksynth`` (photos rendered for new
label layouts), and ``classic+`` combinations of the synthetic arms.

Modules: ``options`` (arms, configuration, checks), ``presets`` (what each preset sets), ``inputs`` (the
input counted before work), ``places`` (folds, seeds, label budgets: where each stage works), ``estimate``
(the run's wall time on this machine, from a few timed steps), ``stages`` (the run folder and its stages),
``cells`` (the stages as a grid of cells for ``landaug.grid``), ``evaluation`` (the report per budget,
K-fold pooling, the label-budget figure), ``summary`` (summary.md), ``cli``.

Usage: ``python pipeline.py --demo`` or ``python pipeline.py --sparcs DIR --test-list FILE --preset cpu --seeds 3``;
``python pipeline.py --sparcs DIR --folds 4 --train-scenes 6,12,all --executor dask --workers 4``.
"""

from .cli import build_parser, config_from_args, main, run
from .options import ARMS, PipelineConfig, validate
from .presets import PRESETS
from .stages import Run

__all__ = ["ARMS", "PRESETS", "PipelineConfig", "Run", "build_parser", "config_from_args", "main", "run", "validate"]
