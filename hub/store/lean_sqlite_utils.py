"""sqlite-utils without pandas and numpy: the one place the hub imports sqlite-utils.

sqlite-utils imports pandas and numpy when it is imported, whenever they are importable, only
to add their types to its column-type table (sqlite_utils/db.py). The hub never hands it a
DataFrame or a numpy number. But with the chain extra installed beside the hub (chDB brings
pandas, numpy and pyarrow) that import alone made every hub load all three: 148 MB of RSS
instead of 69 MB (docs/benchmarks.md, "The hub's memory with the chain extra installed").

So the two are hidden for the length of this one import: a ``None`` in ``sys.modules`` makes
``import pandas`` raise ImportError, which sqlite-utils takes as "not installed". Afterwards
they are importable again: chain/ uses them through chDB, in its own processes. A process that
imported pandas before this module (a head office's) keeps it, and sqlite-utils sees it.
"""
from __future__ import annotations

import sys

#: What sqlite-utils would import for nothing (pyarrow comes in through pandas).
HIDDEN = ("pandas", "numpy")


def _import():
    hidden = [name for name in HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # "import pandas" → ImportError
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return sqlite_utils


sqlite_utils = _import()

__all__ = ["sqlite_utils"]
