"""``cgan.py``: train the pix2pix labeller, predict label maps, pseudo-label generated scenes.

Usage: ``python cgan.py train --data images_CGAN --out models_CGAN/before --epochs 57``;
``python cgan.py predict --model models_CGAN/before --images images_CGAN/test/a --out Pred_before_augmentation``;
``python cgan.py label --model models_CGAN/before --images generated_images --out labelled --min-confidence 0.6``;
``python cgan.py export --model models_CGAN/before --format savedmodel --out labeller_savedmodel``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Sequence

from ..errors import ArgumentParser
from ..grid.options import EXECUTORS, ExecutorConfig
from ..harness.options import add_runtime_options, config_from_args
from ..harness.schedule import LR_SCHEDULES, WARMUP_FRACTION
from ..models import UPSAMPLES
from ..runtime import PRECISIONS
from .archive import run_predict
from .infer import run_label
from .losses import LOSSES
from .model import LABELLERS, LAMBDA, TARGETS
from .options import (BETA_1, CHECKPOINTS, CLASS_WEIGHTS, EXPORT_FORMATS, LEARNING_RATE, PREDICT_BATCH, STAGE, TTA,
                      ExportConfig, LabelConfig, PredictConfig, TrainConfig, check_schedule_given, resolve,
                      validate, validate_inference)
from .train import run_train

D = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}

GEOMETRY = ("Geometry: the model learns from --size x --size windows (tiles at native resolution or resampled "
            "by stage 1's --tile-scale, or whole scenes each fitted to the window; model.json records the scale "
            "and the fit). predict brings any photo, of any size and aspect, to that scale (or fits it to the "
            "window as the training scenes were), labels overlapping windows and blends their class "
            "probabilities (--overlap), and writes a label map of exactly the photo's size. Validation during "
            "training labels whole scenes the same way.")


def _train_parser(sub) -> None:
    t = sub.add_parser("train", help="train (or --resume) on photo/label pairs",
                       description="Train pix2pix on DATA/train (a/ photos + b/ labels) plus any --extra pairs. "
                                   "Validation scenes (from --split, else a seeded share of the training scenes) "
                                   "are labelled whole every --eval-every steps; the checkpoint with the best "
                                   "validation mIoU over the classes present in their truth is kept as 'best'. "
                                   "Options left out on --resume keep their stored values.",
                       epilog=GEOMETRY + " Example: python cgan.py train --data images_CGAN --out "
                              "models_CGAN/before --epochs 57 --width 0.5", formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", type=Path, help=f"stage-1 folder with train/{{a,b}} and scenes/{{a,b}} (or a folder "
                                            f"with a/ and b/ directly); default {D['data']}")
    t.add_argument("--out", type=Path, help=f"model folder (default {D['out']})")
    t.add_argument("--split", type=Path, metavar="FILE",
                   help="split.json naming the training and validation scenes (pipeline.py writes one per seed); "
                        "default: hold out --val-fraction of the training scenes")
    t.add_argument("--extra", type=Path, action="append", metavar="DIR",
                   help="more training pairs DIR/a + DIR/b (e.g. from cgan.py label); repeatable. Labels may hold "
                        "255 = ignore. Never used for validation")
    t.add_argument("--synthetic-share", type=float, metavar="S",
                   help="draw this share of the pairs from the --extra pairs and the rest from the real pairs, "
                        "counted over the run so that it holds at any batch (at batch 1 with 0.25: one step in "
                        "four); adding scenes never lengthens training (default 0: --extra pairs are appended)")
    t.add_argument("--epochs", type=int, help=f"passes over the real training pairs to reach, also with --resume "
                                              f"(default {D['epochs']}; refused on a run that counts --steps)")
    t.add_argument("--steps", type=int, help="optimizer steps to reach instead of --epochs, also with --resume "
                                             "(default 0: use --epochs)")
    t.add_argument("--eval-every", type=int, metavar="N", help="validate every N steps (default 0: once an epoch)")
    t.add_argument("--batch", type=int, help=f"global batch, split across replicas (default {D['batch']})")
    t.add_argument("--size", type=int, help="model input side, power of two 16..1024 (default: the training "
                                            "photos' size); the U-Net gets one level per halving")
    t.add_argument("--width", type=float, help=f"filter multiplier (1 = the paper's 64..512 filters; 0.5 is ~4x "
                                               f"cheaper, recommended on a CPU; default {D['width']})")
    t.add_argument("--dropout", type=float, help=f"dropout rate in the first decoder blocks (default {D['dropout']})")
    t.add_argument("--target", choices=TARGETS, help="classes: per-class logits, cross-entropy (default); rgb: the "
                                                     "paper's L1 on the colour label image")
    t.add_argument("--labeller", choices=LABELLERS,
                   help="pix2pix: U-Net generator + PatchGAN, adversarial + lambda x pixel loss (the paper's, "
                        "default); unet: the same U-Net on the pixel loss alone, no discriminator")
    t.add_argument("--loss", choices=LOSSES,
                   help="pixel loss: ce (cross-entropy, default), ce+dice (+ soft Dice), ce+lovasz (+ Lovasz-softmax, "
                        "which optimises IoU); each over the classes in the image's truth, with --class-weights, "
                        "ignoring 255")
    t.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                   help=f"constant (default) or cosine: a linear warm-up over the first {100 * WARMUP_FRACTION:g} %% of "
                        "the steps, then a cosine decay to ~0 at the last step")
    t.add_argument("--upsample", choices=UPSAMPLES,
                   help="decoder upsampling: transpose (4x4 stride-2 transposed convolutions, the paper's, default) "
                        "or resize (bilinear 2x then a 3x3 convolution: no checkerboard)")
    t.add_argument("--tta", choices=TTA,
                   help="validation labels each scene as none (default) or flips: the mean class probabilities of "
                        "the scene and its three mirror images; predict and label use it for this model unless "
                        "told otherwise")
    t.add_argument("--class-weights", choices=CLASS_WEIGHTS,
                   help="auto: inverse-frequency cross-entropy weights (capped at 20) for rare classes (default none)")
    t.add_argument("--lambda", dest="lam", type=float, metavar="LAMBDA",
                   help=f"weight of the pixel loss against the adversarial loss (default {LAMBDA:g})")
    t.add_argument("--lr", type=float, help=f"Adam learning rate (default {LEARNING_RATE:g})")
    t.add_argument("--beta1", type=float, help=f"Adam beta_1 (default {BETA_1:g})")
    t.add_argument("--augment", help="comma list of on-the-fly augmentations: jitter (pix2pix resize-and-crop + "
                                     "mirror, default), dihedral (the 8 flips/90-degree rotations), color (mild "
                                     "brightness/contrast, photo only), or none")
    t.add_argument("--copypaste-p", type=float, metavar="P",
                   help="rare-class copy-paste: with probability P a training sample gets connected label regions "
                        "cut from another scene pasted in (default 0: off; 0.25 with -n 2 and -rarity 1 did best on "
                        "SPARCS validation)")
    t.add_argument("--copypaste-n", type=int, metavar="N", help=f"regions pasted per sample (default {D['copypaste_n']})")
    t.add_argument("--copypaste-rarity", type=float, metavar="R",
                   help=f"classes drawn with weight frequency^-R: 1 inverse frequency, 0 uniform "
                        f"(default {D['copypaste_rarity']})")
    t.add_argument("--val-fraction", type=float,
                   help=f"without --split: share of the training scenes held out for validation (default "
                        f"{D['val_fraction']}; 0 = none)")
    t.add_argument("--overlap", type=float, help=f"window overlap when validating whole scenes (default {D['overlap']})")
    t.add_argument("--seed", type=int, help="seed of initialisation, dropout, validation split, data order and "
                                            "augmentation (default 0)")
    t.add_argument("--classes", type=Path, help="classes.json (default DATA/classes.json, else the SPARCS classes)")
    t.add_argument("--sample-every", type=int, help="save a (photo, truth, prediction) grid every N evaluations "
                                                    "and at the end (0 = never; default 5)")
    t.add_argument("--log-every", type=int, help="read the losses to the progress bar every N steps")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in --out up to --epochs/--steps")
    t.add_argument("--quiet", action="store_true", help="no progress bar (evaluation lines are still printed)")
    add_runtime_options(t)


def _inference_options(p: argparse.ArgumentParser, out_default: str, scale_help: str, images_help: str,
                       batch: int) -> None:
    p.add_argument("--model", type=Path, default=Path("models_CGAN"),
                   help="model folder written by cgan.py train --out (default models_CGAN)")
    p.add_argument("--images", type=Path, required=True, help=images_help)
    p.add_argument("--out", type=Path, default=Path(out_default), help=f"output folder (default {out_default})")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best",
                   help="best: highest validation mIoU (default); last: the latest evaluation")
    p.add_argument("--overlap", type=float, default=0.25, help="overlap of neighbouring windows (default 0.25)")
    p.add_argument("--scale", type=float, default=None, help=scale_help)
    p.add_argument("--batch", type=int, default=batch, help=f"windows per forward pass (default {batch})")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="compute precision (default auto: mixed_bfloat16 where the hardware runs it natively)")
    p.add_argument("--tta", choices=TTA, default=None,
                   help="none, or flips: average the class probabilities of the photo and its three mirror images "
                        "(4x the work; default: what the model was validated with, model.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _executor_options(p: argparse.ArgumentParser) -> None:
    """landaug.grid's options, in predict's words: serial labels in this process, dask in cells of scenes."""
    g = p.add_argument_group("where the scenes are labelled (free to change on --resume)")
    g.add_argument("--executor", choices=EXECUTORS,
                   help="serial (default): one scene after another in this process; dask: the scenes spread over Dask "
                        "workers (--workers or --scheduler), in cells of scenes, each a fresh process that loads the "
                        "model once")
    g.add_argument("--workers", type=int, metavar="N",
                   help="with --executor dask: start a local Dask cluster of N single-threaded workers")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --executor dask: submit to the running Dask scheduler at ADDRESS (e.g. tcp://head:8786); "
                        "its workers must see --images and --out at the same paths and import this landaug")
    g.add_argument("--threads", type=int, metavar="T",
                   help="TensorFlow intra-op threads of this process (serial) or of each cell (dask; default: the "
                        "cores // the workers on a host)")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="cgan.py", description="Stage 3: pix2pix labeller (photo -> land-cover label map).",
                       epilog=GEOMETRY)
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,predict,label,export}",
                           parser_class=ArgumentParser)
    _train_parser(sub)
    pr = sub.add_parser("predict", help="label maps (palette PNG, or label GeoTIFF) for a folder of photos",
                        description="Write one label map per photo, same file stem and size: a palette PNG, or for "
                                    "a GeoTIFF photo that is georeferenced or has pixels without data a single-band "
                                    "GeoTIFF with its CRS, transform and the class colours (255 = no data). Each photo "
                                    "gives the model the bands it was trained on (model.json). Every photo is checked "
                                    "before the first map is written.",
                        epilog=GEOMETRY + " Example: python cgan.py predict --model models_CGAN/before "
                               "--images images_CGAN/test/a --out Pred_before_augmentation")
    _inference_options(pr, "predict_CGAN", "model px per photo px (default: the scale the model was trained at, "
                                           "or each photo fitted to the window as its training scenes were)",
                       "a folder of photos, searched with its sub-folders, or a quoted glob of folders (\"data/*/L8\"): "
                       "png, jpg, or GeoTIFF with the model's bands among its bands. A photo's maps take its "
                       "scene name: its stem, or its sub-folders and stem joined by --", PREDICT_BATCH)
    pr.add_argument("--confidence", action="store_true",
                    help="also write OUT/confidence/<scene>_confidence.tif: the top class probability per pixel, "
                         "float32 on the photo's grid, no data (NaN) where the photo has none")
    pr.add_argument("--cog", action="store_true",
                    help="write the GeoTIFFs as Cloud-Optimized GeoTIFFs, with overviews (the most frequent class "
                         "for labels, the mean for confidence), for GIS and web maps (default: tiled GeoTIFFs)")
    pr.add_argument("--overwrite", action="store_true",
                    help="replace the label maps an earlier predict left in --out (default: refuse)")
    pr.add_argument("--resume", action="store_true",
                    help="finish an earlier predict into --out: scenes whose maps are complete are skipped, the "
                         "others labelled (again); the options that shape the maps must be the same")
    _executor_options(pr)
    lb = sub.add_parser("label", help="pseudo-label photos into OUT/a + OUT/b for train --extra",
                        description="Pseudo-label photos (e.g. generated_images) as OUT/a (photos) + OUT/b (labels).",
                        epilog=GEOMETRY + " Confidence is the top class probability (for --target rgb, of the "
                               "inverse squared distances to the class colours).")
    _inference_options(lb, "labelled_CGAN", "model px per photo px (default 1: generated scenes come at the "
                                            "model's own resolution; pass the model's scale for original photos)",
                       "folder of photos (png, jpg, or GeoTIFF with the model's bands among its bands)", 8)
    lb.add_argument("--min-confidence", type=float, default=None, metavar="P",
                    help="mark pixels with confidence below P as ignore (255) and drop scenes whose mean "
                         "confidence is below P (default: keep everything)")
    _export_parser(sub)
    return p


def _export_parser(sub) -> None:
    d = ExportConfig()
    ex = sub.add_parser("export", help="the labeller as a TensorFlow SavedModel for other runtimes",
                        description="Write the model as a TensorFlow SavedModel (TF Serving, TFLite converters): its "
                                    "serving_default signature takes 'windows', a float32 batch (None, S, S, bands) "
                                    "normalised as the model expects, and returns 'probabilities' (None, S, S, "
                                    "classes). OUT/landaug.json beside it gives the window size, bands, their "
                                    "normalisation, scale or fit, classes and flip averaging, from model.json.",
                        epilog="Example: python cgan.py export --model models_CGAN/before --format savedmodel "
                               "--out labeller_savedmodel")
    ex.add_argument("--model", type=Path, default=d.model,
                    help=f"model folder written by cgan.py train --out (default {d.model})")
    ex.add_argument("--format", choices=EXPORT_FORMATS, default=d.format, help=f"default {d.format}")
    ex.add_argument("--out", type=Path, default=d.out, help=f"a new or empty folder (default {d.out})")
    ex.add_argument("--checkpoint", choices=CHECKPOINTS, default=d.checkpoint,
                    help="best: highest validation mIoU (default); last: the latest evaluation")
    ex.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                    help=f"what the exported graph computes in (default {d.precision}, which every runtime runs)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        cfg = resolve(config_from_args(TrainConfig, args, STAGE, D["out"]))
        check_schedule_given(cfg, args.epochs is not None, args.steps is not None)
        validate(cfg)
        result = run_train(cfg)
        if result.best_val_miou is not None:
            print(f"cgan train: best validation mIoU {result.best_val_miou:.4f} at step {result.best_step} "
                  f"(mean of the last evaluations {result.last5_val_miou:.4f}); model in {result.out}")
        return 0
    if args.command == "export":
        from .export import SIDECAR, export

        out = export(ExportConfig(args.model, args.out, args.format, args.checkpoint, args.precision))
        print(f"cgan export: SavedModel in {out}, how to feed it in {out / SIDECAR}")
        return 0
    common = dict(model=args.model, images=args.images, out=args.out, checkpoint=args.checkpoint, batch=args.batch,
                  overlap=args.overlap, precision=args.precision, progress=not args.quiet, tta=args.tta)
    if args.command == "predict":
        cfg = PredictConfig(**common, scale=args.scale, overwrite=args.overwrite, confidence=args.confidence,
                            cog=args.cog, resume=args.resume, **ExecutorConfig.of(args).__dict__)
        validate_inference(cfg)
        written = run_predict(cfg)
        print(f"cgan predict: {len(written)} label maps in {cfg.out}")
    else:
        cfg = LabelConfig(**common, min_confidence=args.min_confidence, scale=1.0 if args.scale is None else args.scale)
        validate_inference(cfg)
        res = run_label(cfg)
        print(f"cgan label: {res.written} scenes in {res.out}/a + {res.out}/b, {res.dropped} dropped, "
              f"{100 * res.ignored_fraction:.1f} % of pixels ignored")
    return 0
