"""Stage 4: score label maps against the truth and compare sets of predictions (e.g. augmentation arms).

Usage: ``python eval.py [--truth DIR] [--pred NAME=DIR|GLOB ...] [--reference NAME ...] [--out DIR]``
From code: ``report = evaluate_sets(truth_dir, {"before": [dir], "after": [run1, run2]}, registry, out=DIR)``.

Every prediction is paired with its truth mask by file stem; tiles ``<scene>__t<row>_<col>`` are grouped
into their scene. One confusion matrix per run, summed over the test scenes, gives the set's metrics
(landaug.metrics); a set given several folders (a glob, or the same NAME repeated) is several runs, e.g.
training seeds, reported as mean +- std over runs. Every set is compared with each reference (default:
the first set): differences of mIoU, OA and per-class IoU with a two-level paired bootstrap interval over
runs and test scenes. Outputs in ``--out``: report.json, report.md, figures (PNG) and config.json.

Modules: ``options`` (config, CLI, classes), ``plan`` (pairing, scenes, tiles.json), ``compute``
(confusion matrices), ``report`` (set reports, comparisons), ``markdown``, ``figures``, ``cli``.
"""

from .cli import evaluate_plan, evaluate_sets, main, run, validate, write_outputs
from .compute import by_scene, compute_confusions
from .markdown import render_markdown
from .options import EvalConfig, build_parser, parse_pred_specs, resolve_registry
from .plan import EvalPlan, owned_windows, plan_evaluation
from .report import build_report

__all__ = ["EvalConfig", "EvalPlan", "build_parser", "build_report", "by_scene", "compute_confusions",
           "evaluate_plan", "evaluate_sets", "main", "owned_windows", "parse_pred_specs", "plan_evaluation",
           "render_markdown", "resolve_registry", "run", "validate", "write_outputs"]
