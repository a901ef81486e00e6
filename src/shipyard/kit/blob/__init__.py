"""Blob store port and adapters (content-addressed by sha256)."""
