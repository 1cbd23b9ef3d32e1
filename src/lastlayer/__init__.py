"""lastlayer: last-layer retraining with loss weights that are right the first time."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lastlayer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
