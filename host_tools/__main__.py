"""`python -m host_tools` runs the `boardmcp` CLI."""

import sys

from host_tools.cli import main

sys.exit(main())
