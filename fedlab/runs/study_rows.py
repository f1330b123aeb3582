"""A study's runs as rows, each with its condition: strategy × DP ε × local anonymization × seed.

Why a module of its own: the study's console table, its report and any later analysis must read
the same numbers from the same files. Each run directory of a study holds an ordinary simulation
(summary.json + metrics.jsonl); this module turns the last evaluated round of each into

* one **run row**: target utility with its context (accuracy, balanced accuracy, majority-class
  rate, predicted-positive rate, whether the model is near-constant), the clients' utility on
  their own splits, Group Effect, ε spent, rows suppressed, and per protected attribute the
  group fairness of the global model pooled over the clients' splits and on the target, with the
  group sizes (``pooled_spd__sex``, ``target_n_priv__race``, ...);
* one **client row** per run × client: that client's utility and fairness on its own split, and
  what its local anonymization achieved (k, ℓ, t, suppression, information loss).

Fairness orientation: SPD = P(ŷ = positive | privileged) − P(ŷ = positive | unprivileged), EOD
the same for the true-positive rate; the positive label (the favourable outcome) and privileged
values are taken from each run's summary (``class_names[1]``, ``protected``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

CONDITION = ["strategy", "epsilon_target", "anonymize"]
FAIR_METRICS = {"spd": "spd", "eod": "eq_opp_diff", "n_priv": "n_priv", "n_unpriv": "n_unpriv"}


def condition_label(strategy: str, epsilon: Any, anonymize: str) -> str:
    """ "fedavg · ε=3 · k=10" (no DP / raw rows said in words)."""
    eps = "no DP" if epsilon is None or _nan(epsilon) else f"ε={float(epsilon):g}"
    anon = "raw" if anonymize in ("", "none", None) else str(anonymize)
    return f"{strategy} · {eps} · {anon}"


def privacy_label(epsilon: Any, anonymize: str) -> str:
    """The privacy treatment alone: "no DP · raw", "ε=3 · ℓ=2"."""
    return condition_label("", epsilon, anonymize).removeprefix(" · ")


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _last_evaluated(path: Path) -> dict[str, Any]:
    last: dict[str, Any] = {}
    file = path / "metrics.jsonl"
    if not file.is_file():
        return last
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("target_acc") is not None:
            last = rec
    return last


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _fair_cols(prefix: str, by_attr: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, values in (by_attr or {}).items():
        for short, key in FAIR_METRICS.items():
            out[f"{prefix}_{short}__{attr}"] = (values or {}).get(key)
    return out


def run_rows(study_dir: Path, cells: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(run rows, client rows) for the runs listed in `cells` (columns CONDITION + seed + run)."""
    from fedlab.metrics.confusion import utility_from_confusion

    runs: list[dict[str, Any]] = []
    clients: list[dict[str, Any]] = []
    for cell in cells.to_dict("records"):
        path = Path(study_dir) / str(cell["run"])
        summary = _read_json(path / "summary.json")
        last = _last_evaluated(path)
        eps = cell.get("epsilon_target")
        eps = None if eps is None or _nan(eps) else float(eps)
        key = {
            "strategy": cell["strategy"],
            "epsilon_target": eps,
            "anonymize": cell.get("anonymize") or "none",
            "seed": int(cell["seed"]),
        }
        key["condition"] = condition_label(key["strategy"], eps, key["anonymize"])
        key["privacy"] = privacy_label(eps, key["anonymize"])
        target = utility_from_confusion(last.get("target_confusion")) if last.get("target_confusion") else {}
        per_client = last.get("client_confusion") or {}
        cu = {c: utility_from_confusion(m) for c, m in per_client.items()}
        dp = summary.get("dp") or {}
        anon = {str(a.get("client")): a for a in summary.get("anonymization") or []}
        row = {
            **key,
            "target_acc": summary.get("final_target_acc", last.get("target_acc")),
            "target_balanced_acc": target.get("balanced_accuracy"),
            "target_majority_rate": target.get("majority_rate"),
            "target_positive_rate": target.get("positive_rate"),
            "target_degenerate": target.get("degenerate_reason") or "",
            "client_acc": _mean([u.get("accuracy") for u in cu.values()])
            if cu
            else _mean(list((last.get("client_own_acc") or {}).values())),
            "client_balanced_acc": _mean([u.get("balanced_accuracy") for u in cu.values()]),
            "client_majority_rate": _mean([u.get("majority_rate") for u in cu.values()]),
            "group_effect": summary.get("final_group_effect", last.get("group_effect")),
            "mean_client_target_acc": last.get("mean_client_target_acc"),
            "epsilon_spent": dp.get("max_epsilon") if dp.get("enabled") else None,
            "rows_suppressed": sum(int(a.get("suppressed", 0)) for a in anon.values()),
            "positive_label": (summary.get("class_names") or [None, None])[-1],
            "privileged": json.dumps(summary.get("protected") or {}),
            "run": cell["run"],
            **_fair_cols("pooled", last.get("pooled_fairness")),
            **_fair_cols("target", last.get("target_fairness")),
        }
        runs.append(row)
        names = sorted(
            set(cu) | set(last.get("client_own_acc") or {}) | set(last.get("client_fairness") or {}),
            key=_client_order,
        )
        for name in names:
            u = cu.get(name, {})
            a = anon.get(name, {})
            clients.append(
                {
                    **key,
                    "client": name,
                    "domain": name.split(":", 1)[-1],
                    "n": u.get("n"),
                    "acc": u.get("accuracy", (last.get("client_own_acc") or {}).get(name)),
                    "balanced_acc": u.get("balanced_accuracy"),
                    "majority_rate": u.get("majority_rate"),
                    "epsilon": ((dp.get("epsilon") or {}) if isinstance(dp.get("epsilon"), dict) else {}).get(
                        name
                    ),
                    "achieved_k": a.get("k"),
                    "achieved_l": a.get("l"),
                    "achieved_t": a.get("t"),
                    "suppressed": a.get("suppressed"),
                    "info_loss": a.get("info_loss"),
                    **_fair_cols("client", (last.get("client_fairness") or {}).get(name)),
                }
            )
    return pd.DataFrame(runs), pd.DataFrame(clients)


def attributes(runs: pd.DataFrame) -> list[str]:
    """Protected attributes present in the run rows (from their ``pooled_spd__attr`` columns)."""
    seen = [c.split("__", 1)[1] for c in runs.columns if c.startswith(("pooled_spd__", "target_spd__"))]
    return list(dict.fromkeys(seen))


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None and not _nan(v)]
    return sum(vals) / len(vals) if vals else None


def _client_order(name: str) -> tuple[float, str]:
    head = name.split(":", 1)[0]
    return (float(head) if head.isdigit() else math.inf, name)
