"""Process-level tuning for evaluation workers.

Each evaluation parses thousands of small JSON objects. With CPython's default collector
thresholds that triggers frequent full collections that rescan the whole (large, long-lived)
heap: measured here, every second evaluation of a 5,000-Observation patient cost ~90 ms instead
of ~42 ms. Freezing the heap as it is at start-up (imports, configuration) and collecting the
young generation less often removes that without changing what is collected: the parsed
records are acyclic and freed by reference counting.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GEN0_THRESHOLD, _gen0), gen1, gen2)
