"""``python -m vidkompy``: the same command line as ``vidkompy``."""

import sys

from vidkompy.cli import main

sys.exit(main())
