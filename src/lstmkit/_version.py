"""The package version, in a module of its own: ``lstmkit.runs`` reads it without importing the package face."""

__version__ = "0.2.0"
