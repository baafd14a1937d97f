#!/usr/bin/env python3
"""Stage 4: metrics of predicted label maps against the truth, and the comparison of sets (e.g. arms).

Usage: python eval.py [--truth images_CGAN/test/b] [--pred before=Pred_before_augmentation
       --pred after=Pred_after_augmentation] [--reference NAME ...] [--out eval_report] [--classes FILE]
       [--images DIR]
"""

import sys

from landaug.errors import script_main
from landaug.evaluate import main

if __name__ == "__main__":
    sys.exit(script_main(main))
