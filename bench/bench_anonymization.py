"""Anonymization and verification speed / information loss on UCI Adult, fedlab vs ANJANA and pycanon.

    python bench/bench_anonymization.py [--data-dir DIR] [--repeats 3] [--anjana-repeats 1]

Setup (as in the ANJANA Adult example, plus race and workclass): 45,222 complete rows, 8 QIs
(age, education, marital-status, occupation, race, sex, native-country, workclass) with the
ARX/ANJANA hierarchies shipped in audits/datasets/data, sensitive attribute = salary-class (binary, as in
the ANJANA example), 20 % suppression allowed. Models: k in {2, 10, 100}; k=10 + distinct l=2;
k=10 + t=0.5 (equal distance). Every tool gets the same table and hierarchies; loss is fedlab's
NCP (see audits/anonymity/loss.py) computed on each tool's output, suppressed rows included,
and "ok" re-verifies each output with audits.anonymity.verify. Times are medians over the repeats.

--data-dir: a folder with adult/adult.data and adult/adult.test (e.g. the shared reference data);
default: the copy embedded in the package. Hierarchies always come from the package (they are the
ANJANA files plus the age row 89 that the distributed age.csv lacks).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from audits.anonymity import PrivacyModel, anonymize
from audits.anonymity.loss import full_domain_loss
from audits.anonymity.verify import k_anonymity, l_diversity, t_closeness
from audits.datasets.load import Dataset, load_dataset
from audits.datasets.schema import builtin_dir, builtin_schema

SENSITIVE = "salary-class"
LIMIT = 0.2
MODELS: list[tuple[str, PrivacyModel]] = [
    ("k=2", PrivacyModel(k=2)),
    ("k=10", PrivacyModel(k=10)),
    ("k=100", PrivacyModel(k=100)),
    ("k=10,l=2", PrivacyModel(k=10, l=2)),
    ("k=10,t=0.5", PrivacyModel(k=10, t=0.5, t_distance="equal")),
]
HIER_FILES = {
    "age": "age",
    "education": "education",
    "marital-status": "marital",
    "occupation": "occupation",
    "race": "race",
    "sex": "sex",
    "native-country": "country",
    "workclass": "workclass",
}


def _load(data_dir: Path | None) -> Dataset:
    if data_dir is None:
        return load_dataset("adult")
    schema = builtin_schema("adult")
    files = [str((data_dir / "adult" / f).resolve()) for f in ("adult.data", "adult.test")]
    return load_dataset(schema=schema.model_copy(update={"files": files}))


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _satisfies(table: pd.DataFrame, qis: list[str], model: PrivacyModel) -> bool:
    if table.empty:
        return False
    ok = k_anonymity(table, qis) >= model.k
    if model.l is not None:
        ok &= l_diversity(table, qis, SENSITIVE) >= model.l
    if model.t is not None:
        ok &= t_closeness(table, qis, SENSITIVE, distance="equal") <= model.t + 1e-9
    return bool(ok)


def _anjana(df: pd.DataFrame, qis: list[str], model: PrivacyModel) -> pd.DataFrame:
    from anjana.anonymity import k_anonymity as anj_k
    from anjana.anonymity import l_diversity as anj_l
    from anjana.anonymity import t_closeness as anj_t

    base = builtin_dir() / "hierarchies" / "adult"
    hier = {q: dict(pd.read_csv(base / f"{HIER_FILES[q]}.csv", header=None)) for q in qis}
    with contextlib.redirect_stdout(io.StringIO()):
        if model.t is not None:
            return anj_t(df, [], qis, SENSITIVE, model.k, model.t, LIMIT * 100, hier)
        if model.l is not None:
            return anj_l(df, [], qis, SENSITIVE, model.k, model.l, LIMIT * 100, hier)
        return anj_k(df, [], qis, model.k, LIMIT * 100, hier)


def _anjana_row(ds: Dataset, qis: list[str], model: PrivacyModel, repeats: int) -> dict[str, Any]:
    df = ds.frame
    seconds, out = _median_time(lambda: _anjana(df.copy(), qis, model), repeats)
    if out.empty:
        return {
            "seconds": seconds,
            "loss": float("nan"),
            "supp": float("nan"),
            "classes": 0,
            "height": "-",
            "ok": False,
        }
    retained = pd.Index(out["index"]) if "index" in out.columns else df.index
    levels = {q: ds.hierarchies[q].level_of(out[q].astype(str).unique()) for q in qis}
    if any(v is None for v in levels.values()):
        loss = float("nan")
    else:
        loss = full_domain_loss(df, qis, ds.hierarchies, levels, retained)  # type: ignore[arg-type]
    table = out.drop(columns=["index"], errors="ignore").astype({q: str for q in qis})
    return {
        "seconds": seconds,
        "loss": loss,
        "supp": 1 - len(out) / len(df),
        "classes": int(table.groupby(qis).ngroups),
        "height": sum(v or 0 for v in levels.values()),
        "ok": _satisfies(table, qis, model),
    }


def _fedlab_row(
    ds: Dataset, qis: list[str], model: PrivacyModel, algorithm: str, repeats: int
) -> dict[str, Any]:
    seconds, res = _median_time(
        lambda: anonymize(ds.frame, qis, ds.hierarchies, model, algorithm, LIMIT, SENSITIVE),  # type: ignore[arg-type]
        repeats,
    )
    m = res.metrics
    height = "-" if algorithm == "mondrian" else str(int(m["height"]))
    return {
        "seconds": seconds,
        "loss": m["loss"],
        "supp": m["suppressed_fraction"],
        "classes": int(m["classes"]),
        "height": height,
        "ok": _satisfies(res.table, qis, model),
        "nodes": int(m["nodes_checked"]),
        "result": res,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="folder holding adult/adult.data, adult/adult.test"
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats for fedlab runs and verification")
    parser.add_argument("--anjana-repeats", type=int, default=1, help="repeats for ANJANA (slow)")
    parser.add_argument("--skip-anjana", action="store_true")
    args = parser.parse_args(argv)

    ds = _load(args.data_dir)
    qis = ds.schema.quasi_identifiers
    print(
        f"Adult: {len(ds.frame)} rows, {len(qis)} QIs, sensitive={SENSITIVE}, suppression limit {LIMIT:.0%}"
    )
    print(f"fedlab repeats={args.repeats}, anjana repeats={args.anjana_repeats} (median seconds)\n")
    header = (
        f"{'model':<12} {'algorithm':<15} {'seconds':>8} {'loss':>7} {'supp%':>6} {'classes':>8} "
        f"{'height':>6} {'ok':>3}"
    )
    print(header)
    print("-" * len(header))
    k10 = None
    for label, model in MODELS:
        rows: list[tuple[str, dict[str, Any]]] = []
        for algorithm in ("optimal", "mondrian", "greedy"):
            row = _fedlab_row(ds, qis, model, algorithm, args.repeats)
            rows.append((f"fedlab {algorithm}", row))
            if label == "k=10" and algorithm == "optimal":
                k10 = row["result"]
        if not args.skip_anjana:
            rows.append(("anjana", _anjana_row(ds, qis, model, args.anjana_repeats)))
        for name, r in rows:
            print(
                f"{label:<12} {name:<15} {r['seconds']:>8.3f} {r['loss']:>7.4f} {100 * r['supp']:>6.2f} "
                f"{r['classes']:>8} {r['height']:>6} {'yes' if r['ok'] else 'NO':>3}"
            )
        if not args.skip_anjana:
            opt, anj = rows[0][1], rows[-1][1]
            print(
                f"{'':<12} optimal vs anjana: {anj['seconds'] / opt['seconds']:.1f}x faster, "
                f"loss {opt['loss']:.4f} vs {anj['loss']:.4f}"
            )
        sys.stdout.flush()

    assert k10 is not None
    table = k10.table.reset_index(drop=True)  # pycanon needs a 0..n-1 index
    print(
        f"\nVerification on the k=10 optimal output ({len(table)} rows, "
        f"{int(k10.metrics['classes'])} classes)"
    )
    print(f"{'check':<14} {'fedlab s':>9} {'pycanon s':>10} {'fedlab':>9} {'pycanon':>9}")
    import pycanon.anonymity as pc

    checks = [
        ("k-anonymity", lambda: k_anonymity(table, qis), lambda: pc.k_anonymity(table, qis)),
        (
            "l-diversity",
            lambda: l_diversity(table, qis, SENSITIVE),
            lambda: pc.l_diversity(table, qis, [SENSITIVE]),
        ),
        (
            "t-closeness",
            lambda: t_closeness(table, qis, SENSITIVE),
            lambda: pc.t_closeness(table, qis, [SENSITIVE]),
        ),
    ]
    for name, ours, theirs in checks:
        t_ours, v_ours = _median_time(ours, max(args.repeats, 5))
        t_theirs, v_theirs = _median_time(theirs, args.repeats)
        print(f"{name:<14} {t_ours:>9.4f} {t_theirs:>10.4f} {float(v_ours):>9.4f} {float(v_theirs):>9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
