"""The installed version of nica, in a module of its own so that any layer can read it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nica")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
