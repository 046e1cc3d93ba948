"""``python -m lifecycle`` works like ``lifecycle``."""

import sys

from lifecycle.cli import main

sys.exit(main())
