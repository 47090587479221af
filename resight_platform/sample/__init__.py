"""Sample partner files for the landing zone, with a ground-truth manifest (see ``generate``)."""

from resight_platform.sample.generator import generate
from resight_platform.sample.manifest import Manifest

__all__ = ["Manifest", "generate"]
