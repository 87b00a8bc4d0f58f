"""Pure record filters and the knowledge they use (no Beam here).

setup.py compiles the text stage's hot modules with mypyc; an editable install puts the compiled
modules next to their sources, where Python imports them before the .py files. A source edited
after that compile would not run: importing ``filters`` warns, and the tests refuse to start.
"""

from __future__ import annotations

import glob
import importlib.machinery
import os
import warnings

_HERE = os.path.dirname(os.path.abspath(__file__))


def user_cache_dir() -> str:
    """altcap's folder in the user's cache ($XDG_CACHE_HOME, else ~/.cache)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "altcap")


def stale_compiled_modules() -> list[str]:
    """Sources in this package changed since their compiled module was built."""
    stale = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for compiled in glob.glob(os.path.join(_HERE, "*" + suffix)):
            source = compiled[: -len(suffix)] + ".py"
            # 2 s of slack: a wheel install writes both files at about the same time
            if os.path.exists(source) and os.path.getmtime(source) > os.path.getmtime(compiled) + 2:
                stale.append(os.path.relpath(source, os.path.dirname(_HERE)))
    return sorted(stale)


STALE_HINT = "changed after being compiled; the old compiled code runs until `make install` (or pip install -e .)"

if _stale := stale_compiled_modules():
    warnings.warn(f"{', '.join(_stale)} {STALE_HINT}", RuntimeWarning, stacklevel=2)
