#!/usr/bin/env python3
"""Mask-to-photo synthesis: train a generator that renders a satellite photo from a land-cover label map,
write synthetic (photo, label) training pairs for new layouts, score its photos.

Usage: python synth.py train --data images_CGAN --out models_synth [--generator spade|pix2pix] [--split FILE]
       python synth.py generate --model models_synth --out generated_synth --n-layouts 100 --per-layout 2
       python synth.py score --model models_synth --images images_CGAN/test/a
"""

import sys

from landaug.errors import script_main
from landaug.synth import main

if __name__ == "__main__":
    sys.exit(script_main(main))
