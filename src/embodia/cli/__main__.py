"""``python -m embodia.cli ...``: the ``embodia`` console script."""

import sys

from embodia.cli.app import main

sys.exit(main())
