"""trustlane: a trusted data space for connected-vehicle data."""

__version__ = "0.1.0"
