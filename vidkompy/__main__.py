"""``python -m vidkompy``: the same command line as ``vidkompy``."""

import sys

from vidkompy._cli.main import main

sys.exit(main())
