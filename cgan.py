#!/usr/bin/env python3
"""Stage 3: pix2pix labeller. Train on images_CGAN, predict label maps, pseudo-label generated scenes.

Usage: python cgan.py train --data images_CGAN --out models_CGAN/before --epochs 57
       python cgan.py predict --model models_CGAN/before --images images_CGAN/test/a --out Pred_before_augmentation
       python cgan.py label --model models_CGAN/before --images generated_images --out labelled --min-confidence 0.6
"""
import sys

from landaug.cgan import main
from landaug.errors import script_main

if __name__ == "__main__":
    sys.exit(script_main(main))
