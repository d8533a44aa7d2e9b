"""`python -m cachefix` is the `cachefix` command."""

import sys

from cachefix.cli import main

sys.exit(main())
