"""How a class folder's name becomes a class name (pure, no pandas: the UI uses it too)."""

from __future__ import annotations

import re

_ORDER_PREFIX = re.compile(r"^\d+[_\- ]")


def class_name_of(folder: str) -> str:
    """'0_elliptical' -> 'elliptical': a leading ordering number is not part of the name."""
    return _ORDER_PREFIX.sub("", folder) or folder
