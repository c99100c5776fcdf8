"""The toolkit's version, in a module of its own: checkpoints record it without importing the package's API."""

__version__ = "0.2.0"
