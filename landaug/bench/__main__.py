"""``python -m landaug.bench``: the same as ``python bench.py`` (batch-size probes start it this way).

Usage: ``python -m landaug.bench --model pix2pix --size 256 --batch 4 --json``.
"""

import sys

from ..errors import script_main
from .cli import main

if __name__ == "__main__":
    sys.exit(script_main(main, prog="bench.py"))
