#!/usr/bin/env python3
"""Benchmark: training and inference images/s, FLOPs and utilisation of the GANs on this machine, and the
whole-scene labelling speed of the pix2pix labeller.

Usage: python bench.py --model pix2pix|dcgan|paired --size 256 --batch 4 [--precision auto] [--xla]
       [--impl project|reference] [--compare] [--no-fused [all|batchnorm|adam]] [--ablation]
       [--steps 10] [--warmup 3] [--json]
       python bench.py --scene 1000 [--size 128] [--width 0.5] [--batch 8] [--json]
       python bench.py --scene 1000 --ablation inference [--tta] [--batch 32] [--json]
"""
import sys

from landaug.bench import main
from landaug.errors import script_main

if __name__ == "__main__":
    sys.exit(script_main(main))
