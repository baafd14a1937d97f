"""``synth.py``: train a mask-to-photo generator, write synthetic (photo, label) pairs, score its photos.

Usage:
  synth.py train --data images_CGAN --out models_synth [--split FILE] [--generator oasis|spade|pix2pix] [--resume]
  synth.py generate --model models_synth --out generated_synth --n-layouts 100 --per-layout 2 [--rare-boost 1]
  synth.py score --model models_synth [--images DIR] [--n 200]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from ..errors import ArgumentParser
from ..harness.options import add_loop_options, config_from_args
from .options import GENERATORS, LAYOUT_KINDS, STAGE, GenerateConfig, ScoreConfig, TrainConfig

D = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
G = {f.name: f.default for f in dataclasses.fields(GenerateConfig)}


def _train_parser(sub) -> None:
    t = sub.add_parser("train", help="train (or --resume) a label -> photo generator",
                       description="Learn to render a photo from a land-cover label map, on the pairs of "
                                   "DATA/train. Options left out on --resume keep their stored values.")
    # Defaults are None so that --resume can tell options given on the command line from stored ones.
    t.add_argument("--data", type=Path, help=f"stage-1 folder with train/a photos + train/b labels (default: "
                                            f"{D['data']})")
    t.add_argument("--out", type=Path, help=f"model folder: checkpoints, samples, logs (default: {D['out']})")
    t.add_argument("--split", type=Path, metavar="FILE",
                   help="split.json: learn only from the pairs of its training scenes (default: every pair)")
    t.add_argument("--generator", choices=GENERATORS,
                   help=f"oasis: U-Net with a latent and a noise map at every scale, segmentation discriminator, "
                        f"no pixel loss; spade: GauGAN, hinge + feature matching, a latent per photo; pix2pix: "
                        f"U-Net + PatchGAN, L1, dropout noise (default: {D['generator']})")
    t.add_argument("--steps", type=int, help=f"total training steps to reach (default: {D['steps']})")
    t.add_argument("--batch", type=int, help=f"global batch size, split across replicas (default: {D['batch']})")
    t.add_argument("--width", type=float, help=f"channel multiplier of both networks (1 = the papers'; default: "
                                               f"{D['width']})")
    t.add_argument("--latent-dim", type=int, help=f"SPADE and oasis latent length (default: {D['latent_dim']})")
    t.add_argument("--l1", type=float, help=f"oasis: weight of a pixel L1 against the real photo (default: "
                                            f"{D['l1']:g}: none)")
    t.add_argument("--diversity", type=float, help=f"oasis: weight of the mode-seeking term that rewards photos of one "
                                                   f"layout for differing (default: {D['diversity']:g})")
    t.add_argument("--diffaugment", metavar="POLICY",
                   help=f"oasis: DiffAugment on the discriminator's inputs, a comma list of color, translation, "
                        f"cutout (default: {D['diffaugment'] or 'none'})")
    t.add_argument("--lr", type=float, help=f"Adam learning rate of both networks (default: {D['lr']})")
    t.add_argument("--beta1", type=float, help=f"Adam beta_1 (default: {D['beta1']})")
    t.add_argument("--seed", type=int, help=f"seed of initialisation, data order, noise (default: {D['seed']})")
    add_loop_options(t, D)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="synth.py", description="Render satellite photos from land-cover label maps: "
                                                    "synthetic training pairs with exact labels.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,generate,score}", parser_class=ArgumentParser)
    _train_parser(sub)
    g = sub.add_parser("generate", help="synthetic (photo, label) pairs for new layouts",
                       description="New layouts from the training masks of the model's training scenes, K photos "
                                   "each. The same --seed gives the same files; existing files are never "
                                   "overwritten.")
    g.add_argument("--model", type=Path, default=G["model"], help=f"trained model folder (default: {G['model']})")
    g.add_argument("--out", type=Path, default=G["out"], help=f"output folder: a/ photos, b/ labels (default: "
                                                            f"{G['out']})")
    g.add_argument("--n-layouts", type=int, default=G["n_layouts"], metavar="N", help=f"layouts (default: {G['n_layouts']})")
    g.add_argument("--per-layout", type=int, default=G["per_layout"], metavar="K",
                   help=f"photos rendered per layout with different noise: oasis latents and noise maps, SPADE "
                        f"latents, or pix2pix's dropout kept on at inference (weak variety) (default: "
                        f"{G['per_layout']})")
    g.add_argument("--seed", type=int, default=0, help="seed of layouts and noise; part of every name (default: 0)")
    g.add_argument("--rare-boost", type=float, default=G["rare_boost"], metavar="R",
                   help=f"rare-class regions pasted into the paste layouts: ceil(4 R) each, classes by inverse "
                        f"frequency; 0 = plain layouts (default: {G['rare_boost']:g})")
    g.add_argument("--layouts", default=G["layouts"], metavar="KINDS",
                   help=f"comma list of layout kinds, used in turn: {', '.join(LAYOUT_KINDS)} "
                        f"(default: {G['layouts']})")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    s = sub.add_parser("score", help="image quality of rendered photos against real photos",
                       description="Sliced Wasserstein distance (and histogram distance, nearest real photo) of "
                                   "photos rendered for new layouts made of the training masks against real "
                                   "photos: by default those of the validation scenes of the model's split, so "
                                   "that choosing a generator never looks at the test scenes.")
    s.add_argument("--model", type=Path, default=ScoreConfig.model, help="trained model folder (default: models_synth)")
    s.add_argument("--images", type=Path, help="folder of real photos to compare with (default: the pairs of the "
                                              "validation scenes of the model's --split, from its data folder)")
    s.add_argument("--n", type=int, default=ScoreConfig.n, help=f"photos to render (default: {ScoreConfig.n})")
    s.add_argument("--seed", type=int, default=0, help="seed of layouts, noise and patch sampling (default: 0)")
    s.add_argument("--layouts", default=ScoreConfig.layouts, metavar="KINDS",
                   help=f"layout kinds to render, used in turn (no rare boost): {', '.join(LAYOUT_KINDS)} "
                        f"(default: {ScoreConfig.layouts}: layouts the generator has not seen whole)")
    s.add_argument("--out", type=Path, help="where score.json, nearest.png and samples.png go (default: MODEL/score)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        from .train import train

        res = train(config_from_args(TrainConfig, args, STAGE, D["out"]))
        print(f"trained to step {res['step']}: {res['out']}")
    elif args.command == "generate":
        from .generate import generate

        cfg = GenerateConfig(model=args.model, out=args.out, n_layouts=args.n_layouts, per_layout=args.per_layout,
                             seed=args.seed, rare_boost=args.rare_boost, layouts=args.layouts,
                             progress=not args.quiet)
        written = generate(cfg)
        print(f"wrote {len(written)} pairs to {cfg.out}")
    else:
        from ..gan.generate import format_score
        from .diversity import format_diversity
        from .generate import score

        cfg = ScoreConfig(model=args.model, images=args.images, n=args.n, seed=args.seed, layouts=args.layouts,
                          out=args.out,
                          progress=not args.quiet)
        report = score(cfg)
        print(format_score(report))
        print(format_diversity(report))
    return 0
