"""The fit cache: one fit, then identical fits answered from the cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common import Row, _without_cache_flag, _yes, fmt_s, fmt_x, median
from scm_client import Worker

if TYPE_CHECKING:
    from bench import Bench


def cache(bench: Bench, main: Worker) -> None:
    """Fit cache: a repeated identical fit vs the fit itself (chain)."""
    hits = bench.args.cache_hits
    bench.case("cache", f"cache: one fit, then {hits} identical fits (cache hits), chain")
    miss_s, first = bench.fit(main, bench.data["chain"], seed=7, cache=True)
    hit_s, same = [], True
    for _ in range(hits):
        seconds, again = bench.fit(main, bench.data["chain"], seed=7, cache=True)
        hit_s.append(seconds)
        same = (
            same
            and again.metadata.get("cache_hit") is True
            and _without_cache_flag(again.raw) == _without_cache_flag(first.raw)
        )
    ratio = miss_s / median(hit_s)
    bench.details["cache"] = {
        "fit_s": miss_s,
        "hit_s": hit_s,
        "same_result": same,
        "first_cache_hit_flag": first.metadata.get("cache_hit"),
    }
    bench.results.add(
        Row(
            "cache",
            f"cache hit vs fit, chain (identical request; same result: {_yes(same)})",
            fmt_s(miss_s),
            fmt_s(median(hit_s)),
            f"{fmt_x(ratio)} faster",
            "≥ 20× faster, same result",
            ratio >= 20 and same,
            ratio,
            20,
            "higher",
            "×",
        )
    )
