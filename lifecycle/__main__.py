"""``python -m lifecycle`` works like ``lifecycle``."""

import sys

if sys.argv[1:] == ["hook", "claude"]:
    # An event that only records is journaled before the command line is even loaded.
    from lifecycle.integrations.claude_fast import main as fast_path

    code = fast_path()
    if code is not None:
        sys.exit(code)

from lifecycle.cli import main

sys.exit(main())
