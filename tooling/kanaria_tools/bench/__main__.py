"""`python -m kanaria_tools.bench`: see kanaria_tools.bench.cli."""

import sys

from kanaria_tools.bench.cli import main

sys.exit(main())
