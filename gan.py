#!/usr/bin/env python3
"""Stage 2: train a DCGAN on the training scenes, generate synthetic scenes, score them.

Usage: python gan.py train --images images --out models_GAN --steps 20000 [--with-labels images_CGAN/train]
       python gan.py generate --model models_GAN --n 200 --out generated_images [--seed 0]
       python gan.py score --model models_GAN --images images
"""

import sys

from landaug.errors import script_main
from landaug.gan import main

if __name__ == "__main__":
    sys.exit(script_main(main))
