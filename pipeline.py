#!/usr/bin/env python3
"""The whole experiment in one command: stages 1-4 for every arm and seed, and a summary.md to read first.

Usage: python pipeline.py --demo | python pipeline.py --sparcs DIR --test-list FILE --preset cpu --seeds 3
"""

import sys

from landaug.errors import script_main
from landaug.pipeline import main

if __name__ == "__main__":
    sys.exit(script_main(main))
