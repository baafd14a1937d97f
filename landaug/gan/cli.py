"""``gan.py``: train the paper's DCGAN on the training scenes, generate synthetic scenes, score them.

Usage:
  gan.py train --images images --out models_GAN --steps 20000 [--with-labels images_CGAN/train] [--resume]
  gan.py generate --model models_GAN --n 200 --out generated_images [--seed 0] [--truncation 1.5]
  gan.py score --model models_GAN --images images [--n 500] [--inception-weights FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Sequence

from ..errors import ArgumentParser
from ..harness.options import add_loop_options, config_from_args
from ..models import dcgan
from .generate import format_score, generate, score
from .options import LOSSES, STAGE, GenerateConfig, ScoreConfig, TrainConfig
from .train import train

D = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _train_parser(sub) -> None:
    t = sub.add_parser("train", help="train (or --resume) a DCGAN",
                       description="Train a DCGAN. Options left out on --resume keep their stored values.")
    # Defaults are None so that --resume can tell options given on the command line from stored ones.
    t.add_argument("--images", type=Path, help="folder of training photos (default: images; "
                   "with --with-labels the photos of DIR/a are used)")
    t.add_argument("--out", type=Path, help=f"output folder for checkpoints, samples, logs (default: {D['out']})")
    t.add_argument("--with-labels", type=Path, metavar="DIR",
                   help="paired mode: DIR/a photos + DIR/b masks (e.g. images_CGAN/train); the generator "
                        "also outputs a label map")
    t.add_argument("--split", type=Path, metavar="FILE",
                   help="split.json: learn only from the photos of its training scenes (pipeline.py writes one "
                        "per seed; default: every photo of the folder)")
    t.add_argument("--classes", type=Path, metavar="FILE",
                   help="classes.json for --with-labels (default: DIR/classes.json, DIR/../classes.json, SPARCS)")
    t.add_argument("--size", type=int, help="scene size, a power of two >= 16; scenes are resized to it "
                                            "(default: the size of the scenes)")
    t.add_argument("--width", type=int, help=f"channels at the 4x4 end of both networks; the paper's is "
                                             f"{dcgan.PAPER_WIDTH} (default: {D['width']})")
    t.add_argument("--latent-dim", type=int, help=f"latent vector length (default: {D['latent_dim']})")
    t.add_argument("--steps", type=int, help=f"total training steps to reach (default: {D['steps']})")
    t.add_argument("--batch", type=int, help=f"global batch size, split across replicas (default: {D['batch']})")
    t.add_argument("--lr", type=float, help=f"Adam learning rate of both networks (default: {D['lr']})")
    t.add_argument("--beta1", type=float, help=f"Adam beta_1 (default: {D['beta1']})")
    t.add_argument("--loss", choices=LOSSES, help=f"adversarial loss on logits (default: {D['loss']})")
    t.add_argument("--ema", type=float, help=f"decay of the generator's moving average used for sampling; "
                                             f"0 turns it off (default: {D['ema']})")
    t.add_argument("--d-noise", type=float,
                   help=f"std of the Gaussian noise added to the discriminator's inputs, in units of the 0..1 "
                        f"intensity range (default: {D['d_noise']}, the paper's)")
    t.add_argument("--diffaugment", metavar="POLICY",
                   help="comma list of color,translation,cutout applied to real and fake scenes before the "
                        "discriminator (default: off, as in the paper; turn on for < ~1000 scenes)")
    t.add_argument("--flip-rotate", action=argparse.BooleanOptionalAction, default=None,
                   help="random flips and 90-degree rotations of the real scenes (default: on)")
    t.add_argument("--seed", type=int, help=f"seed of initialisation, data order and sampling (default: {D['seed']})")
    t.add_argument("--score-every", type=int, help=f"steps between quality scores; 0 = only at the end "
                                                   f"(default: {D['score_every']})")
    t.add_argument("--keep-checkpoints", type=int, help=f"checkpoints kept (default: {D['keep_checkpoints']})")
    add_loop_options(t, D)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="gan.py", description="Train a DCGAN on training scenes, generate synthetic scenes, "
                                                  "score them.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,generate,score}", parser_class=ArgumentParser)
    _train_parser(sub)
    g = sub.add_parser("generate", help="write synthetic scenes from a trained model",
                       description="Write N synthetic scenes; the same --seed gives the same scenes.")
    g.add_argument("--model", type=Path, default=GenerateConfig.model, help="trained model folder (default: models_GAN)")
    g.add_argument("--n", type=int, default=GenerateConfig.n, help="number of scenes (default: 200)")
    g.add_argument("--out", type=Path, default=GenerateConfig.out, help="output folder (default: generated_images)")
    g.add_argument("--seed", type=int, default=0, help="latent seed; part of every file name (default: 0)")
    g.add_argument("--truncation", type=float, help="redraw latent entries beyond +-T: fewer, more typical "
                                                    "scenes (e.g. 1.5; default: off)")
    g.add_argument("--batch", type=int, default=GenerateConfig.batch, help="scenes per forward pass (default: 32)")
    g.add_argument("--skip-existing", action="store_true",
                   help="write only missing files instead of refusing when a file of this seed exists")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    s = sub.add_parser("score", help="image-quality score of a trained model against real scenes",
                       description="Sliced Wasserstein distance, histogram distance, nearest real scene "
                                   "(and FID/KID with --inception-weights).")
    s.add_argument("--model", type=Path, default=ScoreConfig.model, help="trained model folder (default: models_GAN)")
    s.add_argument("--images", type=Path, default=ScoreConfig.images, help="real scenes (default: images)")
    s.add_argument("--n", type=int, default=ScoreConfig.n, help="generated scenes to score (default: 500)")
    s.add_argument("--seed", type=int, default=0, help="seed of latents and patch sampling (default: 0)")
    s.add_argument("--truncation", type=float, help="latent truncation as in generate (default: off)")
    s.add_argument("--out", type=Path, help="where score.json and nearest.png go (default: MODEL/score)")
    s.add_argument("--inception-weights", type=Path, metavar="FILE",
                   help="local InceptionV3 (no top) weights file: also report FID and KID")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        train(config_from_args(TrainConfig, args, STAGE, D["out"]))
    elif args.command == "generate":
        cfg = GenerateConfig(model=args.model, n=args.n, out=args.out, seed=args.seed, truncation=args.truncation,
                             batch=args.batch, skip_existing=args.skip_existing, progress=not args.quiet)
        written = generate(cfg)
        print(f"wrote {len(written)} scenes to {cfg.out}")
    else:
        cfg = ScoreConfig(model=args.model, images=args.images, n=args.n, seed=args.seed,
                          truncation=args.truncation, out=args.out, inception_weights=args.inception_weights,
                          progress=not args.quiet)
        print(format_score(score(cfg)))
    return 0
