"""`fedka-select`: FedKA or FedAvg for a target, chosen on the sources' own pseudo-targets.

Why: FedKA's feature matching and its fine-tuning on votes gain under covariate shift (Digit-Five,
Office-Caltech10) and cost accuracy under label shift (every tabular federation measured), and no
signal read from the unlabelled target told the two apart (docs/reproductions/fedka2022.md, issue
#26). Training-domain validation (Gulrajani & Lopez-Paz, ICLR 2021) uses labels the federation
has: for the target T, FedAvg and FedKA run on every *pseudo-task* of the sources — the federation
without T, one source domain S as the target, scored on S's labelled test split — and FedKA is
chosen for T when its mean final-round gain over the pseudo-targets is above 0; with fewer than two
source domains there is no pseudo-task and FedAvg is chosen (no evidence that adapting helps). T's
data play no part in the choice; nothing is tuned. One choice per target at a fixed selection seed,
reused for every seed of a sweep, as a hyperparameter chosen once.

Cost: 2 × (source domains) extra runs per target, at the run's own settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fedlab.config import SimulationConfig
from fedlab.core.rundir import write_json_atomic

Run = Callable[..., Any]  # fedlab.runs.simulate.simulate: (cfg, out=, on_round=) -> SimulationResult

SELECT = "fedka-select"
CANDIDATES = ("fedavg", "fedka")  # the fallback first: a tie (gain 0) keeps it
SELECTION_SEED = 0


def expand(names: list[str]) -> list[str]:
    """`names` with `fedka-select` replaced by the strategies it may run (to check them up front)."""
    return [each for name in names for each in (CANDIDATES if name == SELECT else (name,))]


@dataclass(frozen=True)
class Selection:
    """The choice for one target and the pseudo-task accuracies it was made from."""

    chosen: str
    pseudo: dict[str, dict[str, float]] = field(default_factory=dict)  # S -> strategy -> final acc

    @property
    def gain(self) -> float | None:
        """Mean FedKA − FedAvg final accuracy over the pseudo-targets (None: no pseudo-task)."""
        if not self.pseudo:
            return None
        return sum(p["fedka"] - p["fedavg"] for p in self.pseudo.values()) / len(self.pseudo)

    def record(self) -> dict[str, Any]:
        """What a run's summary.json keeps of the choice (the report's header reads it)."""
        record = {"chosen": self.chosen, "gain": self.gain, "seed": SELECTION_SEED}
        return {**record, "pseudo_targets": self.pseudo}


Status = Callable[[str, int, int], None]  # ("select", runs done, runs in all): progress of the choice


def select_for(
    cfg: SimulationConfig, target: str, work: Path, run: Run, on_status: Status | None = None
) -> Selection:
    """Run (with `run`) the pseudo-tasks of `target`'s sources under `work` and choose."""
    from fedlab.federation.setup import setup_for

    setup = setup_for(cfg, target)
    sources = [d for d in setup.fed.domain_names if d != setup.target]
    if len(sources) < 2:
        return Selection(CANDIDATES[0])
    pseudo: dict[str, dict[str, float]] = {}
    for i, source in enumerate(sources):
        for j, name in enumerate(CANDIDATES):
            if on_status:
                on_status("select", len(CANDIDATES) * i + j, len(CANDIDATES) * len(sources))
            c = cfg.model_copy(deep=True)
            c.seed = SELECTION_SEED
            c.federation.domains = sources
            c.training.target = source
            c.training.strategy = name
            summary = run(c, out=work / f"{name}-{source}").summary
            pseudo.setdefault(source, {})[name] = float(summary["final_target_acc"])
    gain = sum(p["fedka"] - p["fedavg"] for p in pseudo.values()) / len(pseudo)
    return Selection("fedka" if gain > 0 else "fedavg", pseudo)


def run_selected(
    cfg: SimulationConfig,
    run_dir: Path,
    selection_dir: Path,
    chosen: dict[str, Selection],
    run: Run,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    on_status: Status | None = None,
) -> Any:
    """One `fedka-select` run: the target's choice (made once per target into `chosen`), then the
    chosen strategy's run (both with `run`, fedlab's `simulate`), whose summary says
    `fedka-select` and records the choice."""
    target = cfg.training.target
    if target not in chosen:
        chosen[target] = select_for(cfg, target, selection_dir / target, run, on_status)
    selection = chosen[target]
    run_cfg = cfg.model_copy(deep=True)
    run_cfg.training.strategy = selection.chosen
    result = run(run_cfg, out=run_dir, on_round=on_round)
    summary = {**result.summary, "strategy": SELECT, "selection": selection.record()}
    write_json_atomic(result.run_dir / "summary.json", summary)
    return replace(result, summary=summary)
