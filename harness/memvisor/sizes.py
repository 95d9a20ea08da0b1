"""Sizes as the spec writes them: 512M, 1G, 4096 (bytes), with K/M/G/T powers of 1024."""
from __future__ import annotations

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    text = text.strip().upper()
    unit = text[-1] if text and text[-1] in _UNITS else ""
    number = text[: len(text) - len(unit)]
    if not number.isdigit():
        raise ValueError(f"not a size: {text!r}")
    return int(number) * _UNITS[unit]


def format_size(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return str(n)
