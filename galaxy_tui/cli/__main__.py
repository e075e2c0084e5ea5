"""`python -m galaxy_tui.cli`: the same as the `galaxy-tui` command."""

import sys

from galaxy_tui.cli import main

sys.exit(main())
