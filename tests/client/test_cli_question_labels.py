"""The CLI says what a question's ``[lo, hi]`` is: DoWhy's percentile bounds, not a
two-sided interval of the named level (confidence 0.95 spans the 5th to the 95th)."""

from __future__ import annotations

from scm_client.cli.questions import estimate, interval_rule


def test_the_interval_label_names_dowhys_percentiles() -> None:
    assert interval_rule(0.95) == (
        "confidence 0.95: the bootstrap's 5th to 95th percentiles, DoWhy's rule")
    assert interval_rule(0.8) == (
        "confidence 0.8: the bootstrap's 20th to 80th percentiles, DoWhy's rule")


def test_a_value_is_shown_with_its_bounds() -> None:
    assert estimate(6.19012, [5.95471, 6.34803]) == "6.1901 [5.9547, 6.3480]"
    assert estimate(6.19012, None) == "6.1901"
