"""modelpilot's version, in a module of its own: the server and the CLI read it without importing
the package's lazy top-level names."""

__version__ = "0.1.0"
