#!/usr/bin/env python3
"""Stage 1: SPARCS scenes, your own image+mask pairs, or synthetic demo scenes to 256x256 training/test sets.

Usage: python resize_to_256.py --sparcs SPARCS_DIR [--test-list FILE] [--size 256] [--mode resize|tile]
"""

import sys

from landaug.errors import script_main
from landaug.prepare import main

if __name__ == "__main__":
    sys.exit(script_main(main))
