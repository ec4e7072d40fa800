"""Processing before transfer: image anonymisation, location privacy, VIN pseudonyms, differentially private
aggregates and re-identification risk, each a ``Processor`` found by name (``get``, ``names``)."""

from trustlane.privacy.base import REQUIRED, Processor, get, names, register

__all__ = ["REQUIRED", "Processor", "get", "names", "register"]
