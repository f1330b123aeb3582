"""Label-free checks of whether a target differs from its sources by label shift (issue #26).

Why a script: FedKA's feature matching and the target BatchNorm statistics of its fine-tuning
help under covariate shift (Digit-Five) and cost accuracy under label shift (the tabular
federations); a no-harm default would need a signal, computed without target labels, that tells
the two apart. This measures three candidate signals, reading no target label:

    # input space: how much of the sources -> target mean shift a class re-weighting explains
    python scripts/label_shift_check.py inputs --config docs/examples/compas_sex_federation.toml \\
        --data-dir ../shared/data
    python scripts/label_shift_check.py inputs --federation digit-five --data-dir ../shared/data
    # black-box shift estimation (BBSE, Lipton et al. 2018) for saved runs' final models
    python scripts/label_shift_check.py runs runs/v22/d5/runs-w1/v8-mnistm-s0/fedka-mnistm-s0
    # difference of confidences, source held-out vs target pool, for saved runs' final models
    python scripts/label_shift_check.py confidence runs/v22/d5/runs-w1/v0-mnistm-s0/fedavg-mnistm-s0

`inputs`: standardise the inputs by the pooled sources' mean and std; fit the target pool's
mean as a mixture of the sources' class means (weights on the simplex); r = squared residual /
squared distance of the sources' own mix, both less the target mean's sampling noise. r near 0:
a re-weighting of the classes explains the shift (label shift); near 1: it does not.
`runs`: C = the final model's confusion (predicted x true) on the source clients' held-out rows,
mu = its predicted class mix on the target pool; q = the target class mix that solves C w = mu
(w >= 0, non-negative least squares); "changed" = share of target test predictions that the
prior correction argmax_k f_k(x) q_k / p_k would change (the test rows' inputs only).
`confidence`: the difference of confidences (Guillory et al. 2021): the final model's mean
max-softmax on the source clients' held-out rows minus that on the target pool, an estimate of
the accuracy it loses on the target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize, nnls

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_federation import preset_overrides  # noqa: E402

from fedlab.config import load_simulation_config  # noqa: E402
from fedlab.federation.setup import setup_for  # noqa: E402
from fedlab.learn.training import predict_logits  # noqa: E402
from fedlab.wire.arrays import load_weights  # noqa: E402


def mean_shift_explained(
    xs: np.ndarray, ys: np.ndarray, xt: np.ndarray, k: int
) -> tuple[float, float, float]:
    """(distance of the sources' mix, residual of the best class mix, TV between the two mixes)."""
    xs, xt = xs.reshape(len(xs), -1).astype(np.float64), xt.reshape(len(xt), -1).astype(np.float64)
    mean, std = xs.mean(0), xs.std(0)
    std[std < 1e-6] = 1.0
    xs, xt = (xs - mean) / std, (xt - mean) / std
    p = np.bincount(ys, minlength=k) / len(ys)
    means = np.stack([xs[ys == c].mean(0) if (ys == c).any() else np.zeros(xs.shape[1]) for c in range(k)], 1)
    target, noise = xt.mean(0), xt.var(0).sum() / len(xt)

    def dist(q: np.ndarray) -> float:
        return float(((means @ q - target) ** 2).sum())

    q = minimize(
        dist,
        p,
        method="SLSQP",
        bounds=[(0, 1)] * k,
        constraints=[{"type": "eq", "fun": lambda q: q.sum() - 1}],
    ).x
    return dist(p) - noise, dist(q) - noise, 0.5 * float(np.abs(q - p).sum())


def inputs(args: argparse.Namespace) -> None:
    if args.config:
        cfg = load_simulation_config(args.config, {"federation.data_dir": args.data_dir})
    else:
        preset, missing = preset_overrides(args.federation, args.data_dir)
        if missing is not None:
            sys.exit(f"error: {missing} not found (the {args.federation} data; see --data-dir)")
        cfg = load_simulation_config(None, {**preset, "protocol": "fedka2022"})
    for target in setup_for(cfg).fed.domain_names:
        st = setup_for(cfg, target)
        xs = np.concatenate([c.x_train for c in st.clients])
        ys = np.concatenate([c.y_train for c in st.clients])
        d0, d1, tv = mean_shift_explained(xs, ys, st.target_domain.x_train, st.fed.num_classes)
        r = f"{d1 / d0:.2f}" if d0 > 0 else "n/a (no mean shift beyond noise)"
        print(f"{target:24s} pool {len(st.target_domain.x_train):5d}  r = {r}  TV(mix, sources) = {tv:.2f}")


def _posteriors(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(predict_logits(model, x, torch.device("cpu"))), 1).numpy()


def _load(run: str) -> tuple[torch.nn.Module, object]:
    """A saved run's final model and its federation setup (from the run's own config.toml)."""
    cfg = load_simulation_config(Path(run) / "config.toml")
    st = setup_for(cfg, cfg.training.target)
    model = st.new_model()
    load_weights(model, torch.load(Path(run) / "model.pt", map_location="cpu", weights_only=True))
    return model, st


def runs(args: argparse.Namespace) -> None:
    for run in args.run_dirs:
        model, st = _load(run)
        k = st.fed.num_classes
        joint = np.zeros((k, k))
        for c in st.clients:  # source held-out rows: labelled, the clients' own
            np.add.at(joint, (_posteriors(model, c.x_test).argmax(1), c.y_test), 1)
        n = int(joint.sum())
        joint /= n
        p = joint.sum(0)
        mu = np.bincount(_posteriors(model, st.target_domain.x_train).argmax(1), minlength=k) / len(
            st.target_domain.x_train
        )
        w, _ = nnls(joint, mu)
        q = w * p / (w * p).sum() if (w * p).sum() > 0 else p
        ratio = np.divide(q, p, out=np.ones(k), where=p > 0)
        f = _posteriors(model, st.target_domain.x_test)
        changed = float((f.argmax(1) != (f * ratio).argmax(1)).mean())
        tv = 0.5 * float(np.abs(q - p).sum())
        print(
            f"{run}  source held-out {n:5d}  TV(q, p) = {tv:.2f}  changed = {changed:.2f}  "
            f"q = {np.round(q, 2).tolist()}"
        )


def confidence(args: argparse.Namespace) -> None:
    for run in args.run_dirs:
        model, st = _load(run)
        source = np.concatenate([_posteriors(model, c.x_test).max(1) for c in st.clients])
        target = _posteriors(model, st.target_domain.x_train).max(1)
        print(
            f"{run}  source held-out {source.mean():.3f}  target pool {target.mean():.3f}  "
            f"difference {source.mean() - target.mean():+.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("inputs", help="input-space test per target of a federation")
    a.add_argument("--config", default=None, help="a federation TOML (else --federation)")
    a.add_argument("--federation", default="office-caltech10", choices=["office-caltech10", "digit-five"])
    a.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="the data root")
    b = sub.add_parser("runs", help="BBSE for saved run directories (config.toml + model.pt)")
    b.add_argument("run_dirs", nargs="+")
    c = sub.add_parser("confidence", help="difference of mean confidences, source held-out - target pool")
    c.add_argument("run_dirs", nargs="+")
    args = ap.parse_args()
    {"inputs": inputs, "runs": runs, "confidence": confidence}[args.mode](args)


if __name__ == "__main__":
    main()
