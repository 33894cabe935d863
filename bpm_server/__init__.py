"""BPM server for key-account service processes."""

__version__ = "0.1.0"
