"""bench/bench_scale.py's table: ratios are paired within a repetition, medians over repetitions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench_scale():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_scale_under_test", BENCH / "bench_scale.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def _result(variant: str, rep: int, wall: float, acc: float = 0.5) -> dict:
    return {
        "workload": "tabular",
        "split": "iid",
        "n": 12,
        "per_round": "all",
        "strategy": "fedavg",
        "variant": variant,
        "rep": rep,
        "clients": 12,
        "k": 12,
        "wall_s": wall,
        "cpu_s": wall,
        "s_per_round": wall / 2,
        "updates_per_s": 24 / wall,
        "rss_mb": 500.0,
        "phases": {"client training": wall / 2},
        "final_target_acc": acc,
    }


def test_ratios_pair_cells_of_the_same_repetition() -> None:
    bench = _bench_scale()
    # rep 0 is a slow phase of the machine for every cell: unpaired medians would mix phases
    results = [
        _result("loop", 0, 10.0),
        _result("fedlab", 0, 11.0),
        _result("process:1", 0, 20.0),
        _result("process:2", 0, 10.0),
        _result("loop", 1, 2.0),
        _result("fedlab", 1, 2.4),
        _result("process:1", 1, 4.0),
        _result("process:2", 1, 2.5),
        _result("fedlab", 2, 1.0),  # its loop run failed: no pair, not counted
    ]
    rows = {row[4]: row for row in bench._rows(results)}
    assert rows["fedlab"][5] == "3"  # repetitions
    assert rows["fedlab"][8] == "1.15× [1.10–1.20]"  # vs loop: median of 1.10 and 1.20
    assert rows["fedlab"][9] == "0.50×"  # best vs best: fedlab's 1.0 (unpaired) / loop's 2.0
    assert rows["fedlab"][10] == "1.15× [1.10–1.20]"  # CPU vs loop (in-process variant)
    assert rows["process:1"][10] == "-"  # pool workers' CPU is not in this process
    assert rows["process:2"][11] == "1.80× [1.60–2.00]"  # vs 1 worker: 20/10 and 4/2.5
    assert rows["loop"][8] == rows["loop"][9] == "-"


def test_a_run_whose_accuracy_changes_between_repetitions_is_flagged() -> None:
    bench = _bench_scale()
    rows = bench._rows([_result("loop", 0, 1.0, acc=0.5), _result("loop", 1, 1.0, acc=0.6)])
    assert rows[0][14] == "VARIES"
