"""Reading a /metrics scrape in the service's tests, with prometheus-client's own text parser."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (sample name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, *labels: str) -> Counter[tuple[str, ...]]:
    """The samples called `name`, keyed by the values of `labels` (in that order); zero values left out."""
    found: Counter[tuple[str, ...]] = Counter()
    for (sample, sample_labels), value in samples.items():
        if sample == name and value:
            values = dict(sample_labels)
            found[tuple(values[label] for label in labels)] += value
    return found


def delta(before: Counter[tuple[str, ...]], after: Counter[tuple[str, ...]]) -> Counter[tuple[str, ...]]:
    """What each series grew by between two scrapes (series that did not grow left out)."""
    grown = Counter(after)
    grown.subtract(before)
    return Counter({key: value for key, value in grown.items() if value})
