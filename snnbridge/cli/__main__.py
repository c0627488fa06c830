"""``python -m snnbridge.cli``: the ``snnbridge`` command."""

import sys

from snnbridge.cli import main

if __name__ == "__main__":
    sys.exit(main())
