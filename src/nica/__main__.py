"""``python -m nica ...``: the ``nica`` command line without the installed script (e.g.
from a source tree on ``PYTHONPATH``)."""

from nica.cli import main

if __name__ == "__main__":
    main(prog_name="nica")
