"""SQL's LIKE, as MLflow's filters use it (``name LIKE 'churn%'``), for any service that reads them."""

from __future__ import annotations

import re


def like_pattern(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """SQL LIKE as a regex to ``fullmatch``: % any run of characters (line breaks too), _ any one, every
    other character itself; ``ignore_case`` for ILIKE."""
    parts = [".*" if char == "%" else "." if char == "_" else re.escape(char) for char in pattern]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))
