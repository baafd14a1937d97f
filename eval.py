#!/usr/bin/env python3
"""Stage 4: metrics of predicted label maps against the truth, and the before/after augmentation report.

Usage: python eval.py [--truth images_CGAN/test/b] [--pred before=Pred_before_augmentation
       --pred after=Pred_after_augmentation] [--out eval_report] [--classes FILE] [--images DIR]
"""

import sys

from landaug.evaluate import main
from landaug.errors import cli_main

if __name__ == "__main__":
    sys.exit(cli_main(main))
