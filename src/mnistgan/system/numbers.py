"""Numbers read from text a person or a file gives (the command line, the environment,
config.json, a checkpoint's config): one parser for each kind, with one error line. Only
ASCII digits count ('²' and '٣' are digits to Python's str.isdigit and int, never here),
a float must be finite, a whole number may be written 1e6 but is computed exactly and
bounded before it is (int(float('1e999')) would overflow)."""
from __future__ import annotations

import math
import numbers
import re
from typing import Any

from ..errors import ConfigError

_WHOLE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_SCIENTIFIC = re.compile(r"([0-9]+)(?:\.(0*))?[eE]\+?([0-9]+)", re.ASCII)  # 1e6, 2.0e3: whole numbers
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_NON_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE)
MAX_DIGITS = 30  # a whole number written with more digits (or a larger exponent) is refused unread


def whole(value: Any, name: str, low: int | None = None, high: int | None = None, what: str = "an integer",
          exact_type: bool = False) -> int:
    """value as an int: an int (not a bool), a float that is whole, or text of ASCII digits
    (underscores allowed, or 1e6); within [low, high] when given. ConfigError otherwise.
    exact_type: an int only (numpy's too), as a Python caller passes one: 2.0 and '2' refused."""
    number = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif exact_type:
        raise ConfigError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 10 ** MAX_DIGITS:
        number = int(value)
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if _WHOLE.fullmatch(text) and len(text) <= MAX_DIGITS:
            number = int(text)
        elif (m := _SCIENTIFIC.fullmatch(text)) and len(m.group(1)) + int(m.group(3)) <= MAX_DIGITS:
            number = int(m.group(1)) * 10 ** int(m.group(3))
    if number is None:
        raise ConfigError(f"{name} must be {what}, got {value!r}")
    return bounded(number, name, low, high)


def real(value: Any, name: str, low: float | None = None, high: float | None = None) -> float:
    """value as a finite float: an int or float (not a bool), or text of ASCII digits;
    within [low, high] when given. ConfigError otherwise."""
    if isinstance(value, str) and _NON_FINITE.fullmatch(value.strip()):
        raise ConfigError(f"{name} must be a finite number, got {value.strip()}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value) if abs(value) < 1e308 or isinstance(value, float) else math.inf
    elif isinstance(value, str) and _REAL.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise ConfigError(f"{name} must be a float, got {value!r}")
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    return bounded(number, name, low, high)


def bounded(number, name: str, low=None, high=None):
    """number when within [low, high] (None: no bound); ConfigError naming both otherwise."""
    shown = f"{number:,}" if abs(number) < 10 ** MAX_DIGITS else f"a number of {len(str(abs(int(number))))} digits"
    if low is not None and number < low:
        raise ConfigError(f"{name} must be at least {low}, got {shown}")
    if high is not None and number > high:
        raise ConfigError(f"{name} must be at most {high:,}, got {shown}")
    return number


MAX_THREADS = 1024


def threads(value: Any) -> str | int:
    """The threads setting: 'auto' or a thread count from 1 to MAX_THREADS (threads.py reads
    it; config.validate checks it the same way)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return whole(value, "threads", 1, MAX_THREADS)
    except ConfigError:
        raise ConfigError(f"threads must be auto or a thread count from 1 to {MAX_THREADS}, got {value!r}") from None
