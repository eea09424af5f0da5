"""daneel: serve models and Python classes as microservices, Seldon- and V2-compatible."""

from daneel.runtime.base import Model
from daneel.version import __version__

__all__ = ["Model", "__version__"]
