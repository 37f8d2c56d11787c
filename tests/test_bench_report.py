"""The verdicts of `make bench-registry` (bench/pushpull.py): the ratio to CNCF distribution of the best runs and
the median of each repetition's pair of runs (docs/performance.md, the registry's table)."""

from types import SimpleNamespace

import pytest

from bench import pushpull


def _results(distribution: list[float], this: list[float]) -> dict:
    """A workload's runs as bench/pushpull.py's ``measure`` keeps them, the same for push and pull."""
    runs = {
        label: {direction: {"seconds": min(seconds), "all_seconds": seconds} for direction in ("push", "pull")}
        for label, seconds in (("distribution", distribution), ("folder", this))
    }
    return {"200 x 100 KB": {"registries": runs}}


def test_pairs_are_the_runs_of_one_repetition():
    results = _results([2.0, 4.0, 3.0], [2.5, 2.0, 3.0])
    pushpull.ratios(results)
    folder = results["200 x 100 KB"]["registries"]["folder"]["push"]
    assert folder["ratio"] == 1.0  # best against best: 2.0 / 2.0
    assert folder["paired_ratios"] == [0.8, 2.0, 1.0]
    assert folder["ratio_median"] == 1.0
    assert "ratio" not in results["200 x 100 KB"]["registries"]["distribution"]["push"]


@pytest.mark.parametrize(
    ("distribution", "this", "expected"),
    [
        ([5.0, 6.0, 5.5], [4.0, 5.0, 5.0], "met"),  # best 1.25, pairs 1.25, 1.2, 1.1
        ([5.0, 6.0, 5.5], [6.0, 7.0, 6.0], "NOT met"),  # best 0.83, pairs all below 1
        ([4.0, 6.0, 6.0], [4.5, 5.0, 5.0], "within the noise"),  # best 0.89, median of the pairs 1.2
        ([4.0, 5.0, 5.0], [4.0, 5.5, 5.5], "within the noise"),  # best 1.0, median of the pairs 0.91
        ([5.0, 5.0, 5.0], [5.0, 5.0, 5.0], "met"),  # at 1.0 exactly: the target says "at least"
    ],
)
def test_verdict_needs_both_ratios(distribution, this, expected):
    results = _results(distribution, this)
    pushpull.ratios(results)
    assert pushpull.verdict(results["200 x 100 KB"]["registries"]["folder"]["push"]) == expected
    lines = pushpull.targets(results)
    assert lines[0].startswith(f"- {expected}: push 200 x 100 KB on the folder")


def test_table_shows_the_median_and_range_of_the_pairs():
    results = _results([2.0, 4.0, 3.0], [2.5, 2.0, 3.0])
    for data in results.values():
        for by in data["registries"].values():
            for summary in by.values():
                summary.update({"mb_per_s": 1.0, "cpu_ms_per_blob": {"server": 1.0, "total": 1.0}})
    pushpull.ratios(results)
    folder_row = next(line for line in pushpull.table(results) if "| folder |" in line)
    assert "| 1.0 | 1.0 (0.8-2.0) |" in folder_row


@pytest.mark.parametrize("labels", [["distribution", "folder"], ["distribution", "folder", "s3"]])
def test_distribution_runs_beside_each_of_this_services_runs(labels):
    registries = [SimpleNamespace(label=label) for label in labels]
    orders = [[registry.label for registry in pushpull.turn(registries, n)] for n in range(4)]
    for order in orders:
        assert sorted(order) == sorted(labels)
        middle = order.index("distribution")
        for label in labels[1:]:  # its pair: the run right before or right after distribution's
            assert abs(order.index(label) - middle) == 1, order
    # who runs first alternates: each of this service's rows runs before distribution in half the repetitions
    for label in labels[1:]:
        before = [order.index(label) < order.index("distribution") for order in orders]
        assert before.count(True) == before.count(False) == 2, orders
