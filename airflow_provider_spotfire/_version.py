"""The provider's version (read by hatch at build time and by the provider info)."""

__version__ = "0.1.0"
