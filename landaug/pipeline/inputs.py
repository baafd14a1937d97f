"""The pipeline's input counted before any work: how many training pairs each seed will have.

Only file names and image headers are read, so a batch larger than the training set, or a band that the
photos lack, is refused in a moment, naming the pipeline's option, instead of after the data and the
GANs are done.

Usage: ``check_input_size(cfg)``.
"""

from __future__ import annotations

from ..errors import UserError
from ..prepare.inputs import collect_scenes, photo_layout, scene_shape
from ..prepare.options import PrepareConfig, choose_test
from ..prepare.pairs import pairs_per_scene
from ..split import val_scenes


def prepare_config(cfg, out=None) -> PrepareConfig:
    return PrepareConfig(sparcs=cfg.sparcs, images=cfg.images, masks=cfg.masks,
                         demo=cfg.demo_scenes if cfg.demo else 0, demo_size=cfg.demo_size, classes=cfg.classes,
                         test_list=cfg.test_list, test_fraction=cfg.test_fraction, seed=cfg.seed, size=cfg.size,
                         mode=cfg.data_mode, fit=cfg.fit, tile_scale=cfg.tile_scale, bands=cfg.bands,
                         rgb_bands=cfg.rgb_bands, demo_bands=cfg.demo_bands,
                         out=out if out is not None else cfg.out, progress=cfg.progress)


def check_input_size(cfg) -> None:
    """The bands the photos have, enough training pairs for ``--cgan-batch`` in every seed, and at least one
    test scene."""
    pc = prepare_config(cfg)
    if cfg.demo:
        stems = [f"s{i}" for i in range(cfg.demo_scenes)]
        shapes = {s: (cfg.demo_size, cfg.demo_size) for s in stems}
    else:
        scenes = collect_scenes(pc)
        photo_layout(scenes, pc)
        stems = [sc.stem for sc in scenes]
        shapes = {sc.stem: scene_shape(sc) for sc in scenes}
    test, _ = choose_test(stems, pc)
    if not test:
        raise UserError(cfg.test_list or cfg.sparcs or cfg.images, "no test scene in the input: the arms "
                        "cannot be compared (pass --test-list FILE naming scenes that are in the input)")
    rest = [s for s in stems if s not in test]
    n_val = len(val_scenes(rest, cfg.val_fraction, cfg.seed))
    counts = sorted((pairs_per_scene(shapes[s], pc) for s in rest), reverse=True)
    fewest = sum(counts[n_val:])
    real_share = 1.0 - (cfg.synthetic_share if any(a in cfg.arms for a in ("gan", "paired", "masksynth")) else 0.0)
    if cfg.cgan_batch * real_share > fewest:
        raise UserError(f"--cgan-batch {cfg.cgan_batch} is larger than the {fewest} training pairs a seed may "
                        f"have ({len(rest) - n_val} training scenes after {len(test)} test and {n_val} "
                        f"validation scenes): use --cgan-batch {fewest} or less, or more scenes")
