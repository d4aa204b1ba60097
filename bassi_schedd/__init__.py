"""bassi-schedd: a small scheduler daemon for bassi agent prompts and scripts."""

__version__ = "0.1.0"
