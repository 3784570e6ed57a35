"""``python -m nica.cli`` (e.g. under ``torchrun ... -m nica.cli fit ...``) runs the command line."""

import sys

from nica.cli import main

sys.exit(main())
