"""Benchmark: screening a 20-drug list against a bare dict lookup of 20 names, in the same run.

Run: PYTHONPATH=src python bench/interactions.py
Target: median screen of a 20-entry list <= 50 microseconds (warm: resolution index built and
the entries seen before, as on a clinic's repeat lists). The cold figure (name-resolution cache
cleared before every run, index kept) is printed too.
"""

from __future__ import annotations

import statistics
import time

from ketacare.clinical import interactions
from ketacare.clinical.drugs import resolve
from ketacare.clinical.interactions import screen

MEDICATIONS = [
    "Concerta 54 mg ER tab",
    "adderall xr 20mg",
    "Vyvanse",
    "Strattera 40 mg",
    "Intuniv XR 2mg",
    "sertraline 50mg po daily",
    "Xanax 0.5 mg prn",
    "Wellbutrin XL 150",
    "Lamictal 200 mg",
    "Percocet",
    "ibuprofen",
    "Synthroid 100 mcg",
    "lisinopril 10mg",
    "Claritin-D",
    "Biaxin",
    "Biphentin",
    "Contrave",
    "Nardil",
    "metformin 500mg bid",
    "vyvance",
]
TARGET_US = 50.0


def _median_us(func, runs: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        func()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def main() -> None:
    assert len(MEDICATIONS) == 20
    screen(MEDICATIONS)  # build the catalog, the resolution index and the rule index once
    table = {name.lower(): name for name in MEDICATIONS}
    keys = [name.lower() for name in MEDICATIONS]

    def bare_lookup() -> None:
        for key in keys:
            table.get(key)

    def warm_screen() -> None:
        screen(MEDICATIONS)

    def cold_screen() -> None:
        resolve.cache_clear()
        interactions._cached_view.cache_clear()
        screen(MEDICATIONS)

    baseline = _median_us(bare_lookup, 20_000)
    warm = _median_us(warm_screen, 5_000)
    cold = _median_us(cold_screen, 200)
    findings = len(screen(MEDICATIONS).findings)
    print(f"entries: {len(MEDICATIONS)}, findings: {findings}")
    print(f"bare dict lookup of 20 names: median {baseline:8.2f} us")
    print(f"screen, warm (cached names):  median {warm:8.2f} us  ratio {warm / baseline:6.1f}x")
    print(f"screen, cold (resolve again): median {cold:8.2f} us  ratio {cold / baseline:6.1f}x")
    verdict = "meets" if warm <= TARGET_US else "MISSES"
    print(f"target <= {TARGET_US:.0f} us for the warm screen: {verdict}")


if __name__ == "__main__":
    main()
