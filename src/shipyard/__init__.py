"""Shipyard: an open, self-hostable MLOps platform."""

__version__ = "0.1.0"
