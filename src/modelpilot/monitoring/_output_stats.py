"""Output metrics of the prediction routes, per micro-batch, as plain numbers.

The same reason as :mod:`modelpilot.monitoring._request_stats`: at one connection a
micro-batch is one request, and recording its outputs through prometheus-client's labelled
metrics (predictions, classes, confidence, batch size: six updates) cost about as much as
answering it. Here it is one lock and a few additions; a collector exposes the same families.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from modelpilot.monitoring._request_stats import _Buckets, _le

__all__ = ["OutputStats"]


class OutputStats:
    """Predictions, null outputs, classes, values, confidence and batch sizes.

    Examples
    --------
    >>> stats = OutputStats(confidence_buckets=(0.5, 0.9), value_buckets=(10.0,),
    ...                     batch_buckets=(1, 8))
    >>> stats.observe("iris", "1", ["setosa", "setosa", None], [0.95, 0.7, 0.5])
    >>> families = {f.name: f for f in stats.collect()}
    >>> [(s.labels["class"], s.value) for s in families["modelpilot_predicted_class"].samples]
    [('setosa', 2.0)]
    >>> families["modelpilot_output_null"].samples[0].value
    1.0
    """

    def __init__(
        self,
        *,
        confidence_buckets: Sequence[float],
        value_buckets: Sequence[float],
        batch_buckets: Sequence[float],
    ) -> None:
        self.confidence_bounds = tuple(float(b) for b in confidence_buckets)
        self.value_bounds = tuple(float(b) for b in value_buckets)
        self.batch_bounds = tuple(float(b) for b in batch_buckets)
        self.lock = threading.Lock()
        self.predictions: dict[tuple[str, str], int] = {}
        self.nulls: dict[tuple[str, str], int] = {}
        self.classes: dict[tuple[str, str, str], int] = {}
        self.values: dict[tuple[str, str], _Buckets] = {}
        self.confidence: dict[tuple[str, str], _Buckets] = {}
        self.batches: dict[tuple[str, str], _Buckets] = {}

    def observe(
        self,
        deployment: str,
        version: str,
        predictions: Sequence[Any],
        confidence: Sequence[float] | None,
    ) -> None:
        """One micro-batch's answers for one deployment (``confidence`` for classifiers)."""
        key = (deployment, version)
        regression = confidence is None
        with self.lock:
            self.predictions[key] = self.predictions.get(key, 0) + len(predictions)
            values = None
            if regression:
                values = self.values.get(key)
                if values is None:
                    values = self.values[key] = _Buckets(len(self.value_bounds))
            nulls = 0
            for value in predictions:
                if value is None or value == "" or (isinstance(value, float) and value != value):
                    nulls += 1
                elif values is not None and isinstance(value, int | float):
                    values.counts[bisect_left(self.value_bounds, value)] += 1
                    values.total += value
                else:
                    label = (deployment, version, str(value)[:64])
                    self.classes[label] = self.classes.get(label, 0) + 1
            if nulls:
                self.nulls[key] = self.nulls.get(key, 0) + nulls
            if confidence is not None:
                buckets = self.confidence.get(key)
                if buckets is None:
                    buckets = self.confidence[key] = _Buckets(len(self.confidence_bounds))
                bounds = self.confidence_bounds
                for c in confidence:
                    buckets.counts[bisect_left(bounds, c)] += 1
                    buckets.total += c

    def batch(self, model: str, version: str, rows: int) -> None:
        """One micro-batched model call of ``rows`` rows."""
        with self.lock:
            buckets = self.batches.get((model, version))
            if buckets is None:
                buckets = self.batches[(model, version)] = _Buckets(len(self.batch_bounds))
            buckets.counts[bisect_left(self.batch_bounds, rows)] += 1
            buckets.total += rows

    # ---- scrape time --------------------------------------------------------------------
    def collect(self) -> Iterable[Metric]:
        with self.lock:
            predictions = dict(self.predictions)
            nulls = dict(self.nulls)
            classes = dict(self.classes)
            histograms = [
                (name, doc, labels, bounds, {k: (list(v.counts), v.total) for k, v in d.items()})
                for name, doc, labels, bounds, d in (
                    (
                        "modelpilot_prediction_value",
                        "Predicted values (regression).",
                        ["deployment", "version"],
                        self.value_bounds,
                        self.values,
                    ),
                    (
                        "modelpilot_prediction_confidence",
                        "Top-class probability of classifiers.",
                        ["deployment", "version"],
                        self.confidence_bounds,
                        self.confidence,
                    ),
                    (
                        "modelpilot_batch_rows",
                        "Rows per micro-batched model call.",
                        ["model", "version"],
                        self.batch_bounds,
                        self.batches,
                    ),
                )
            ]
        families: list[Metric] = []
        for name, doc, labels_, counts in (
            (
                "modelpilot_predictions",
                "Predictions answered.",
                ["deployment", "version"],
                predictions,
            ),
            (
                "modelpilot_output_null",
                "Predictions that were null, empty or NaN.",
                ["deployment", "version"],
                nulls,
            ),
            (
                "modelpilot_predicted_class",
                "Predictions per class.",
                ["deployment", "version", "class"],
                classes,
            ),
        ):
            counter = CounterMetricFamily(name, doc, labels=labels_)
            for label_values, count in counts.items():
                counter.add_metric(list(label_values), float(count))
            families.append(counter)
        for name, doc, labels_, bounds, per_key in histograms:
            histogram = HistogramMetricFamily(name, doc, labels=labels_)
            for label_values, (bucket_counts, total) in per_key.items():
                cumulative, buckets = 0, []
                for bound, count in zip((*bounds, float("inf")), bucket_counts, strict=True):
                    cumulative += count
                    buckets.append((_le(bound), float(cumulative)))
                histogram.add_metric(list(label_values), buckets, total)
            families.append(histogram)
        return families
