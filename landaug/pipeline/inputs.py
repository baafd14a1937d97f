"""The pipeline's input checked before the run folder exists: photos, masks, and how many training pairs each
seed will have.

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
from ..split import val_scenes


def prepare_config(cfg, out=None) -> PrepareConfig:
    return PrepareConfig(sparcs=cfg.sparcs, images=cfg.images, masks=cfg.masks,
                         demo=cfg.demo_scenes if cfg.demo else 0, demo_size=cfg.demo_size, classes=cfg.classes,
                         test_list=cfg.test_list, test_fraction=cfg.test_fraction, seed=cfg.seed, size=cfg.size,
                         mode=cfg.data_mode, fit=cfg.fit, tile_scale=cfg.tile_scale, bands=cfg.bands,
                         rgb_bands=cfg.rgb_bands, demo_bands=cfg.demo_bands,
                         colour_tolerance=cfg.colour_tolerance, ignore_class=tuple(cfg.ignore_class),
                         group_by=cfg.group_by, out=out if out is not None else cfg.out, progress=cfg.progress)


def check_input(cfg) -> dict:
    """Every photo decodes and every mask's colours are classes (stage 1's own checks), the bands agree,
    enough training pairs for ``--cgan-batch`` in every seed, and at least one test scene."""
    pc = prepare_config(cfg)
    groups = None
    if cfg.demo:
        stems = [f"s{i}" for i in range(cfg.demo_scenes)]
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
    test, _ = choose_test(stems, pc, groups)
    if not test:
        raise UserError(cfg.test_list or cfg.sparcs or cfg.images, "no test scene in the input: the arms "
                        "cannot be compared (pass --test-list FILE naming scenes that are in the input)")
    rest = [s for s in stems if s not in test]
    unit = (lambda s: groups[s]) if groups else (lambda s: s)
    pairs: dict[str, int] = {}
    for s in rest:
        pairs[unit(s)] = pairs.get(unit(s), 0) + pairs_per_scene(shapes[s], pc)
    # The worst draw: validation takes the units (scenes, or folders) with the most pairs.
    n_val = len({unit(s) for s in val_scenes(rest, cfg.val_fraction, cfg.seed, groups)})
    fewest = sum(sorted(pairs.values(), reverse=True)[n_val:])
    what = "folders" if groups else "scenes"
    real_share = 1.0 - (cfg.synthetic_share if any(a in cfg.arms for a in ("gan", "paired", "masksynth")) else 0.0)
    if cfg.cgan_batch * real_share > fewest:
        raise UserError(f"--cgan-batch {cfg.cgan_batch} is larger than the {fewest} training pairs a seed may "
                        f"have ({len(pairs) - n_val} training {what} after {len(test)} test scenes and {n_val} "
                        f"validation {what}): use --cgan-batch {fewest} or less, or more scenes")
    return {"shapes": shapes, "test": test, "rest": rest, "val_per_seed": n_val, "train_pairs": fewest}
