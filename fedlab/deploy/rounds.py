"""Per-round report of a deployed run: replies received vs expected, and which node failed.

Why a module of its own: the ServerApp records every exchange (`server.replies`, kept in
``summary.json`` under ``deployment.replies``) but speaks in Flower node ids; the launcher
knows which process or container is which node (each SuperNode logs ``SuperNode ID: <id>``).
This module joins the two into lines a person can act on, and gives the verdict for
``--require-all-nodes``. It is used by ``fedlab deploy local`` and, through
``python -m fedlab.deploy.rounds RUN_DIR``, by ``scripts/container-e2e.sh``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.replies import lost_nodes

NODE_ID_LINE = re.compile(r"SuperNode ID:\s*(\d+)")
EXIT_NODES_LOST = 3  # the run completed, but not every SuperNode answered every round


def node_id_from_log(lines: Iterable[str]) -> int | None:
    """The node id a SuperNode logged when it connected (the last one, if it reconnected)."""
    found = None
    for line in lines:
        if m := NODE_ID_LINE.search(line):
            found = int(m.group(1))
    return found


class NodeIdSink:
    """Wraps a launcher's log sink, noting each ``[supernode-N] ... SuperNode ID: <id>`` it sees."""

    PREFIXED = re.compile(r"^\[(supernode-\d+)\].*SuperNode ID:\s*(\d+)")

    def __init__(self, sink: Callable[[str], None]) -> None:
        self.sink = sink
        self.names: dict[int, str] = {}  # node id -> launcher name

    def __call__(self, line: str) -> None:
        if m := self.PREFIXED.search(line):
            self.names[int(m.group(2))] = m.group(1)
        self.sink(line)


@dataclass
class RoundReport:
    """The reply records of one run, with launcher-side names for the node ids."""

    records: list[dict[str, Any]]
    names: dict[int, str] = field(default_factory=dict)  # node id -> "supernode-2"
    metrics: dict[int, dict[str, Any]] = field(default_factory=dict)  # round -> metrics.jsonl line

    @classmethod
    def from_run_dir(cls, run_dir: Path, names: Mapping[int, str] | None = None) -> RoundReport:
        summary = json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))
        records = list(summary.get("deployment", {}).get("replies", []))
        metrics: dict[int, dict[str, Any]] = {}
        path = Path(run_dir) / "metrics.jsonl"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    metrics[int(rec["round"])] = rec
        return cls(records, dict(names or {}), metrics)

    def label(self, node: int) -> str:
        """``supernode-2 (node 4711, 2:rotated)``: launcher name, id, and the client it served."""
        client = next((r["names"][str(node)] for r in self.records if str(node) in r.get("names", {})), None)
        inner = ", ".join(x for x in (f"node {node}", client) if x)
        return f"{self.names[node]} ({inner})" if node in self.names else inner

    def rounds(self) -> list[int]:
        return sorted({int(r["round"]) for r in self.records})

    def lost(self) -> dict[int, dict[int, str]]:
        """Round -> {node id: why} for every round in which some node gave no usable reply."""
        out: dict[int, dict[int, str]] = {}
        for rec in self.records:
            for node, why in lost_nodes(rec).items():
                out.setdefault(int(rec["round"]), {}).setdefault(node, f"{rec['phase']}: {why}")
        return out

    def lines(self) -> list[str]:
        """One line per round: replies per exchange, target accuracy, and who was lost."""
        if not self.records:
            return ["no per-round reply records in this run (summary.json has no deployment.replies)"]
        out = []
        lost = self.lost()
        for rnd in self.rounds():
            parts = [
                f"{r['phase']} {r['received']}/{r['expected']} replies"
                for r in self.records
                if int(r["round"]) == rnd
            ]
            acc = self.metrics.get(rnd, {}).get("target_acc")
            if acc is not None:
                parts.append(f"target acc {100 * float(acc):.1f}%")
            line = f"round {rnd}: " + ", ".join(parts)
            if rnd in lost:
                who = "; ".join(f"{self.label(n)} {why}" for n, why in lost[rnd].items())
                line += f"; LOST {who}"
            out.append(line)
        return out

    def all_nodes_message(self) -> str | None:
        """None when every node answered every exchange; else the one-line reason."""
        lost = self.lost()
        if not self.records:
            return "no per-round reply records: cannot confirm that every SuperNode took part"
        if not lost:
            return None
        nodes = sorted({n for per_round in lost.values() for n in per_round})
        where = ", ".join(f"{self.label(n)} in round(s) {_rounds_of(lost, n)}" for n in nodes)
        return f"{len(nodes)} SuperNode(s) did not reply: {where} (--require-all-nodes)"


def _rounds_of(lost: dict[int, dict[int, str]], node: int) -> str:
    return ",".join(str(r) for r, per in sorted(lost.items()) if node in per)


def main(argv: list[str] | None = None) -> int:
    """``python -m fedlab.deploy.rounds RUN_DIR [--node supernode-1=ID ...] [--require-all-nodes]``."""
    parser = argparse.ArgumentParser(prog="python -m fedlab.deploy.rounds", description="per-round report")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--node", action="append", default=[], metavar="NAME=ID",
                        help="launcher name of a node id (repeatable), e.g. supernode-1=4711")  # fmt: skip
    parser.add_argument("--node-log", action="append", default=[], metavar="NAME=FILE",
                        help="a SuperNode's log, read for its 'SuperNode ID:' line (repeatable)")  # fmt: skip
    parser.add_argument("--require-all-nodes", action="store_true")
    args = parser.parse_args(argv)
    names: dict[int, str] = {}
    for item in args.node + args.node_log:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"error: --node/--node-log {item!r}: expected NAME=VALUE", file=sys.stderr)
            return 2
        if item in args.node_log:
            path = Path(value)
            if not path.is_file():
                print(f"error: --node-log {item!r}: {path} not found", file=sys.stderr)
                return 2
            node = node_id_from_log(path.read_text(encoding="utf-8", errors="replace").splitlines())
            if node is not None:
                names[node] = name
        elif value.isdigit():
            names[int(value)] = name
        else:
            print(f"error: --node {item!r}: the id must be an integer", file=sys.stderr)
            return 2
    if not (args.run_dir / "summary.json").is_file():
        print(f"error: {args.run_dir}: no summary.json (not a finished run directory)", file=sys.stderr)
        return 2
    report = RoundReport.from_run_dir(args.run_dir, names)
    for line in report.lines():
        print(line)
    if args.require_all_nodes and (message := report.all_nodes_message()):
        print(f"error: {message}", file=sys.stderr)
        return EXIT_NODES_LOST
    return 0


if __name__ == "__main__":
    sys.exit(main())
