"""``python -m nica``: the command line, as the ``nica`` script (:mod:`nica.cli`)."""

import sys

from nica.cli import main

sys.exit(main())
