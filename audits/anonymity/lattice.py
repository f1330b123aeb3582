"""Optimal full-domain generalization: search the lattice of per-QI levels for the least loss.

Nodes are checked on the encoded table (audits.anonymity.encoding). Entropy/recursive l and
t-closeness are not monotone once rows may be suppressed, and neither is the loss (more
generalization can mean less suppression), so the search cannot stop at the first satisfying
node. `optimal` makes one top-down pass over the lattice, seeded by the greedy path, and skips
only nodes that provably cannot beat the best one found: those below a node that fails the
monotone part (k-anonymity and distinct l-diversity, both with suppression), and those whose
loss lower bound (the generalization-only loss, additive over QIs and monotone, plus the
suppression penalty inherited from their successors) reaches the best loss. The result is the
exact optimum over the lattice.
"""

from __future__ import annotations

import numpy as np

from audits.anonymity.encoding import Encoded, NodeEval
from audits.anonymity.greedy import greedy
from fedlab.core.errors import ConfigError

MAX_NODES = 2_000_000


def lattice_nodes(heights: np.ndarray) -> np.ndarray:
    """All level vectors, in mixed-radix order (last QI fastest)."""
    total = int(np.prod(heights + 1))
    if total > MAX_NODES:
        raise ConfigError(
            f"anonymize: the generalization lattice has {total} nodes; use fewer QIs or mondrian"
        )
    grids = np.meshgrid(*[np.arange(h + 1) for h in heights], indexing="ij")
    return np.column_stack([g.ravel() for g in grids]).astype(np.int16)


def greedy_seed(enc: Encoded) -> NodeEval:
    """A quick satisfying node (the greedy path) whose loss bounds the optimal search."""
    return greedy(enc)[0]


def optimal(enc: Encoded) -> tuple[NodeEval, int]:
    """The satisfying node with least loss (exact), and the number of nodes checked.

    One top-down pass, layer by layer (sum of levels), over the nodes whose loss bound is below
    the best loss found so far (seeded by the greedy path):

    * a node below a node that fails the monotone part fails too and is never checked;
    * loss(X) = lb(X) + penalty(X), where lb is the generalization-only loss and the penalty is
      what suppressed rows add; penalty(X) >= penalty(Y) for every successor Y, because the
      monotone part suppresses a superset of rows at X, each less generalized. So a node whose
      lb + inherited penalty reaches the best loss is skipped unchecked.

    Every skipped node provably cannot beat the returned one, so the result is optimal.
    """
    nodes = lattice_nodes(enc.heights)
    n_nodes = len(nodes)
    strides = np.cumprod(np.r_[1, (enc.heights + 1)[::-1][:-1]])[::-1]
    lb = sum(enc.mean_ncp[i][nodes[:, i]] for i in range(len(enc.qis))) / len(enc.qis)
    start_checked = enc.checked
    best = greedy_seed(enc)
    fails = np.zeros(n_nodes, dtype=bool)  # monotone part known to fail
    pen = np.zeros(n_nodes)  # lower bound of the suppression penalty
    depth = nodes.sum(axis=1)
    for layer in range(int(depth.max()), -1, -1):
        idx = np.flatnonzero(depth == layer)
        for i in range(len(enc.qis)):
            has = nodes[idx, i] < enc.heights[i]
            child, succ = idx[has], idx[has] + int(strides[i])
            pen[child] = np.maximum(pen[child], pen[succ])
            fails[child] |= fails[succ]
        todo = idx[~fails[idx] & (lb[idx] + pen[idx] < best.loss - 1e-15)]
        for j in todo[np.argsort(lb[todo] + pen[todo], kind="stable")]:
            if lb[j] + pen[j] >= best.loss - 1e-15:
                continue
            ev = enc.evaluate(nodes[j])
            if not ev.monotone_ok:
                fails[j] = True
                continue
            pen[j] = max(pen[j], ev.penalty)
            if ev.ok and (ev.loss, ev.levels) < (best.loss, best.levels):
                best = ev
    return best, enc.checked - start_checked
