"""The run record: one simulation's final and best numbers, computed from its round lines.

Why one owner: `summary.json` is written by the ServerApp and, when it is missing (an
interrupted run), recomputed by the report from `metrics.jsonl`; two implementations had
drifted. Both call `summarize_rounds` on the same round records.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fedlab.config import DPConfig

BEST_NOTE = "best = max over rounds of target test accuracy (optimistic); final = last round (honest)"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def summarize_rounds(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Final vs best round over the *evaluated* rounds (`eval_every`), said explicitly: the best
    round is chosen on the target test split and is therefore optimistic."""
    history = [h for h in history if "target_acc" in h]
    accs = [_number(h["target_acc"]) for h in history]
    best = int(np.nanargmax(accs)) if accs and not all(math.isnan(a) for a in accs) else -1
    last = history[-1] if history else {}
    return {
        "final_target_acc": last.get("target_acc", float("nan")),
        "final_group_effect": last.get("group_effect", float("nan")),
        "final_group_effect_ci": last.get("group_effect_ci"),  # over the test rows (one run)
        "final_mean_client_target_acc": last.get("mean_client_target_acc", float("nan")),
        "best_round": history[best]["round"] if best >= 0 else None,
        "best_target_acc": accs[best] if best >= 0 else float("nan"),
        "best_round_note": BEST_NOTE,
        "mean_group_effect": float(np.mean([_number(h.get("group_effect")) for h in history]))
        if history
        else float("nan"),
        "final_voting_acc": last.get("voting_acc"),
        "final_voting_constant_acc": last.get("voting_constant_acc"),  # one label on the adopted votes
        "final_adoption_rate": last.get("adoption_rate"),
        "final_client_target_acc": last.get("client_target_acc", {}),
        "final_client_own_acc": last.get("client_own_acc", {}),
        "final_pooled_fairness": last.get("pooled_fairness"),
        "final_target_fairness": last.get("target_fairness"),
    }


def dp_summary(dp: DPConfig, history: list[dict[str, Any]]) -> dict[str, Any]:
    """ε spent per client at the end of the run (client mode), or the central ε (central mode)."""
    if not dp.enabled:
        return {"enabled": False}
    out: dict[str, Any] = {"enabled": True, "mode": dp.mode, "max_grad_norm": dp.max_grad_norm}
    last = history[-1] if history else {}
    if dp.mode == "client":
        eps: dict[str, float] = {}
        exhausted: dict[str, bool] = {}
        for h in history:  # a client missing from the last round keeps its latest ε
            eps.update(h.get("client_epsilon", {}))
            exhausted.update(h.get("client_budget_exhausted", {}))
        out.update(
            epsilon=eps,
            budget_exhausted=exhausted,
            max_epsilon=max(eps.values()) if eps else 0.0,
            target_epsilon=dp.target_epsilon,
            noise_multiplier=dp.noise_multiplier,
            delta="1/n per client" if dp.delta is None else dp.delta,
        )
    else:
        out.update(
            epsilon=last.get("central_epsilon", 0.0),
            delta=last.get("central_delta"),
            noise_multiplier=dp.noise_multiplier,
            level="user (per client), all clients every round, no sampling amplification",
        )
        out["max_epsilon"] = out["epsilon"]
    return out
