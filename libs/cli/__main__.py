"""Run the ``tether`` command as ``python -m libs.cli``."""

import sys

from libs.cli.main import main

sys.exit(main())
