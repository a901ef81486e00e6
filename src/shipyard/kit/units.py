"""Quantities as people read them (shared by the CLI and the console)."""

from __future__ import annotations


def human_size(count: int) -> str:
    """Bytes in binary units: ``512 B``, ``6.3 KiB``, ``1.0 GiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{count} B"
