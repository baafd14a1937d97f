"""The pipeline's input checked before the run folder exists: photos, masks, the folds, how many training
pairs each seed will have, and whether every label budget fits.

Photos are checked to decode from their headers and ends, masks are read once (their colours must be
classes), and the pairs are counted from file names and headers, so a bad file, a batch larger than the
training set, or a band that the photos lack is refused in a moment, naming the pipeline's option, instead
of after the data and the GANs are done, and a corrected rerun may use the same ``--out``.

Usage: ``counts = check_input(cfg)``: the scenes' shapes, the test scenes, the validation scenes per seed and
the fewest training pairs a seed may have, for the run's estimate.
"""

from __future__ import annotations

from ..classes import load_registry
from ..errors import UserError
from ..prepare.inputs import check_masks, check_photos, collect_scenes, photo_layout, scene_shape
from ..prepare.options import PrepareConfig, choose_test, scene_groups
from ..prepare.pairs import pairs_per_scene
from ..split import draw_folds, val_scenes
from ..synthetic import scene_name
from .places import base_split, bases, check_budgets, numeric


def prepare_config(cfg, out=None) -> PrepareConfig:
    """Stage 1 of the run; with ``--folds`` it sets no scene aside: every labelled scene becomes training
    pairs and a whole scene, which each fold's splits divide."""
    return PrepareConfig(sparcs=cfg.sparcs, split="none" if cfg.folds else None, images=cfg.images, masks=cfg.masks,
                         demo=cfg.demo_scenes if cfg.demo else 0, demo_size=cfg.demo_size, classes=cfg.classes,
                         test_list=cfg.test_list, test_fraction=cfg.test_fraction, seed=cfg.seed, size=cfg.size,
                         mode=cfg.data_mode, fit=cfg.fit, tile_scale=cfg.tile_scale, bands=cfg.bands,
                         rgb_bands=cfg.rgb_bands, demo_bands=cfg.demo_bands,
                         colour_tolerance=cfg.colour_tolerance, ignore_class=tuple(cfg.ignore_class),
                         group_by=cfg.group_by, out=out if out is not None else cfg.out, progress=cfg.progress)


def test_sets(cfg, pc: PrepareConfig, stems: list[str], groups: dict[str, str] | None) -> list[list[str]]:
    """The test scenes of each fold with ``--folds``, else the one test set stage 1 sets aside."""
    if cfg.folds:
        return draw_folds(stems, cfg.folds, cfg.seed, groups)
    test, _ = choose_test(stems, pc, groups)
    if not test:
        raise UserError(cfg.test_list or cfg.sparcs or cfg.images, "no test scene in the input: the arms "
                        "cannot be compared (pass --test-list FILE naming scenes that are in the input)")
    return [sorted(test)]


def check_input(cfg) -> dict:
    """Every photo decodes and every mask's colours are classes (stage 1's own checks), the bands agree,
    enough training pairs for ``--cgan-batch`` in every seed (and fold, and label budget), at least one test
    scene, and every label budget within the training scenes of every fold and seed. Returns what the run's
    estimate needs: the scene shapes, the test scenes of each fold (one set without folds), the validation
    scenes a seed draws and the fewest training pairs a seed may have."""
    pc = prepare_config(cfg)
    groups = None
    if cfg.demo:
        stems = [scene_name(cfg.seed, i) for i in range(cfg.demo_scenes)]
        shapes = {s: (cfg.demo_size, cfg.demo_size) for s in stems}
    else:
        scenes = collect_scenes(pc)
        photo_layout(scenes, pc)
        check_photos(scenes, cfg.progress)
        check_masks(scenes, load_registry(cfg.classes, ignore=cfg.ignore_class), cfg.progress, cfg.colour_tolerance,
                    cfg.masks or cfg.sparcs)
        groups = scene_groups(scenes, pc, need=3)
        stems = [sc.stem for sc in scenes]
        shapes = {sc.stem: scene_shape(sc) for sc in scenes}
    tests = test_sets(cfg, pc, stems, groups)
    real_share = 1.0 - (cfg.synthetic_share if any(a in cfg.arms for a in ("gan", "paired", "masksynth")) else 0.0)
    counted = [_check_batch(cfg, pc, [s for s in stems if s not in set(test)], len(test), shapes, groups, real_share)
               for test in tests]
    if cfg.train_scenes:
        splits = {b: base_split(cfg, stems, tests[b.fold or 0], b.seed, b.fold, groups) for b in bases(cfg)}
        check_budgets(cfg, splits)
        _check_budget_batch(cfg, pc, splits, shapes, real_share)
    return {"shapes": shapes, "tests": tests, "rest": [s for s in stems if s not in set(tests[0])],
            "val_per_seed": max(n for n, _ in counted), "train_pairs": min(f for _, f in counted)}


def _check_batch(cfg, pc, rest: list[str], n_test: int, shapes, groups, real_share: float) -> tuple[int, int]:
    """Enough training pairs for the batch in the worst draw: validation takes the units (scenes, or
    folders) with the most pairs. Returns the validation units and the fewest training pairs."""
    unit = (lambda s: groups[s]) if groups else (lambda s: s)
    pairs: dict[str, int] = {}
    for s in rest:
        pairs[unit(s)] = pairs.get(unit(s), 0) + pairs_per_scene(shapes[s], pc)
    n_val = len({unit(s) for s in val_scenes(rest, cfg.val_fraction, cfg.seed, groups)})
    fewest = sum(sorted(pairs.values(), reverse=True)[n_val:])
    what = "folders" if groups else "scenes"
    if cfg.cgan_batch * real_share > fewest:
        raise UserError(f"--cgan-batch {cfg.cgan_batch} is larger than the {fewest} training pairs a seed may "
                        f"have ({len(pairs) - n_val} training {what} after {n_test} test scenes and {n_val} "
                        f"validation {what}): use --cgan-batch {fewest} or less, or more scenes")
    return n_val, fewest


def _check_budget_batch(cfg, pc, splits: dict, shapes, real_share: float) -> None:
    """Enough training pairs for the batch in the smallest budget of every fold and seed."""
    smallest = numeric(cfg.train_scenes)
    if not smallest:
        return
    n = smallest[0]
    counts = {b: sum(pairs_per_scene(shapes[s], pc) for s in split["budgets"][str(n)]) for b, split in splits.items()}
    worst = min(counts, key=counts.get)
    if cfg.cgan_batch * real_share > counts[worst]:
        raise UserError(f"--cgan-batch {cfg.cgan_batch} is larger than the {counts[worst]} training pairs of the "
                        f"{n} scenes of budget {n} in {worst.base.replace('/', ' ')}: use --cgan-batch "
                        f"{counts[worst]} or less, or a larger smallest budget in --train-scenes")
