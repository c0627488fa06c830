"""``python -m snnbridge.cli``: the ``snnbridge`` command."""

import sys

from snnbridge.cli import main

sys.exit(main())
