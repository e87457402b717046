"""The metric registry: every readout registers itself where it is defined, with its group, which
way is better, its range and what it needs; tables, verdicts, CSV columns and pages read it here
instead of passing names around as strings.

A readout key is a registered name with optional qualifiers, as the tables name columns:

- ``average_drop@20``: the metric with each map binarised to its top 20% pixels (coverage group);
- ``average_drop_matched``: the metric of the method's matched control (same values, random places);
- ``insertion_auc_order_sd``: for a metric that ranks pixels, the standard deviation across the K
  tie orders of its mean over the images (:func:`camlab.metrics.controls.tie_ranks`): how far the
  number moves with the arbitrary order of equal pixels.

A metric function returns a ranked metric's values per tie order, (N, K), under ``<key>:orders``
(:data:`PER_ORDER`); the readout pipeline turns them into ``<key>_order_sd``.

Adding a metric is one call beside its code, e.g. in ``camlab/metrics/faithfulness.py``::

    register_metric("my_metric", group="confidence", better=Better.HIGHER, low=0, high=100,
                    words="My metric", needs=("model",))

and one line in :func:`camlab.readouts.compute_readouts` that fills it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from ..errors import CamlabError


class Better(StrEnum):
    """Which way a metric is better; ``NONE`` for a description (a map's mean, a probability)."""

    LOWER = "lower"
    HIGHER = "higher"
    NONE = "neither"

    @property
    def arrow(self) -> str:
        """The arrow README and the pages print beside a readout's name (↓, ↑ or nothing)."""
        return {"lower": " ↓", "higher": " ↑", "neither": ""}[self.value]


@dataclass(frozen=True)
class MetricInfo:
    """A registered metric: ``group`` (what computes it), which way is ``better``, its range
    [``low``, ``high``], ``words`` (how a page names it) and ``needs`` (of ``model``, ``region``,
    ``masks``, ``explainer``: what must be given for it to be computed)."""

    name: str
    group: str
    better: Better
    low: float
    high: float
    words: str
    needs: tuple[str, ...] = ()


METRICS: dict[str, MetricInfo] = {}
PER_ORDER = ":orders"  # key suffix of a ranked metric's (N, K) values, one column per tie order
ORDER_SD = "_order_sd"  # key suffix of the spread across tie orders


def register_metric(name: str, *, group: str, better: Better, low: float = 0.0, high: float = 1.0, words: str,
                    needs: tuple[str, ...] = ()) -> MetricInfo:
    """Register ``name``; a name registered twice is a programming error."""
    if name in METRICS:
        raise ValueError(f"metric {name!r} is registered twice")
    METRICS[name] = info = MetricInfo(name, group, Better(better), float(low), float(high), words, tuple(needs))
    return info


@dataclass(frozen=True)
class ReadoutKey:
    """A parsed readout key: the metric, the coverage it was measured at (None: the map itself) and
    whether it is the matched control's value or the spread of the value across tie orders."""

    key: str
    metric: MetricInfo
    coverage: float | None = None
    matched: bool = False
    order_sd: bool = False

    @property
    def better(self) -> Better:
        """Which way is better for this key (none for a spread across tie orders)."""
        return Better.NONE if self.order_sd else self.metric.better

    @property
    def words(self) -> str:
        """How a page names it, e.g. "Average Drop ↓, top 10% of the map, its matched control"."""
        words = self.metric.words + self.better.arrow
        if self.coverage is not None:
            words += f", top {self.coverage:g}% of the map"
        words += ", its matched control" if self.matched else ""
        return words + (", its spread over tie orders" if self.order_sd else "")


def readout_key(key: str) -> ReadoutKey:
    """Parse ``name[@coverage][_matched][_order_sd]``; an unknown name is a clear error listing the known ones."""
    if not isinstance(key, str):
        raise CamlabError(f"a readout key is a string, got {type(key).__name__}")
    base, order_sd = (key[: -len(ORDER_SD)], True) if key.endswith(ORDER_SD) else (key, False)
    base, matched = (base[: -len("_matched")], True) if base.endswith("_matched") else (base, False)
    name, at, coverage = base.partition("@")
    info = METRICS.get(name)
    value = None
    if at:
        try:
            value = float(coverage)
        except ValueError:
            info = None
        if value is not None and not (math.isfinite(value) and 0 < value <= 100):
            info = None
    if info is None:
        raise CamlabError(f"unknown readout {key!r}; known metrics: {', '.join(METRICS)} "
                          "(with @k for a top-k% coverage, _matched for a matched control, _order_sd for the "
                          "spread over tie orders)")
    return ReadoutKey(key, info, value, matched, order_sd)


def is_readout(key: str) -> bool:
    """Whether ``key`` names a registered readout (tables also carry timings and the like)."""
    try:
        readout_key(key)
    except CamlabError:
        return False
    return True


def better(key: str) -> Better:
    """Which way is better for a readout key."""
    return readout_key(key).better


def words(key: str) -> str:
    """The page's name for ``key``; a column that is not a readout keeps its key, spaced."""
    return readout_key(key).words if is_readout(key) else key.replace("_", " ")

