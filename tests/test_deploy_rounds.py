"""Lost SuperNodes are reported, not silent: the ServerApp-side reply tracker, the per-round
report, ``--require-all-nodes`` and ``fedlab deploy keys`` saying kept vs replaced.

All quick: real Flower ``Message`` objects through a scripted grid, and the CLI with
``run_local`` replaced by a stand-in that writes the run directory a deployment writes.
The real-process variant (a SuperNode killed mid-run) is the slow test in test_deploy.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flwr.app import ConfigRecord, Error, Message, MetricRecord, RecordDict
from typer.testing import CliRunner

from fedlab.deploy.rounds import EXIT_NODES_LOST, NodeIdSink, RoundReport, main, node_id_from_log
from server.replies import ReplyTracker, lost_nodes


@pytest.fixture
def task_identity() -> Iterator[None]:
    """Flower stamps messages with the current task's identity; give this process one."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id)
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 7, 1, 0
    try:
        yield
    finally:
        TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id = saved


class ScriptedGrid:
    """Answers each message as scripted per node: "ok", "error" (written by the SuperLink,
    as for a node it marked offline) or "silent" (no reply within the timeout)."""

    def __init__(self, script: dict[int, str]) -> None:
        self.script = script
        self.timeouts: list[float | None] = []

    def get_node_ids(self) -> list[int]:
        return sorted(n for n, how in self.script.items() if how != "gone")

    def send_and_receive(self, messages: list[Message], *, timeout: float | None = None) -> list[Message]:
        self.timeouts.append(timeout)
        replies = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = msg.object_id  # as Flower's grids do on push
            node = msg.metadata.dst_node_id
            if self.script[node] == "ok":
                content = RecordDict(
                    {
                        "info": ConfigRecord({"client": f"{node % 10}:dom{node}"}),
                        "m": MetricRecord({"x": 1.0}),
                    }
                )
                replies.append(Message(content, reply_to=msg))
            elif self.script[node] == "error":
                error = Message(Error(code=5, reason="SuperNode is offline"), reply_to=msg)
                error.metadata.__dict__["_src_node_id"] = 1  # the SuperLink writes it, as itself
                replies.append(error)
        return replies


def _messages(nodes: list[int], kind: str, server_round: int | None = None) -> list[Message]:
    config = {"a": 1} if server_round is None else {"server-round": server_round}
    return [
        Message(RecordDict({"config": ConfigRecord(config)}), dst_node_id=n, message_type=kind) for n in nodes
    ]


def test_tracker_with_sampling_reports_unsampled_nodes_as_such_not_as_lost(task_identity: None) -> None:
    grid = ScriptedGrid({11: "ok", 12: "ok", 13: "ok", 14: "ok"})
    tracker = ReplyTracker(grid, [11, 12, 13, 14])
    tracker.send_and_receive(_messages([11, 12, 13, 14], "query"), timeout=30)  # the handshake
    tracker.send_and_receive(_messages([11, 13], "train", server_round=1), timeout=30)
    tracker.send_and_receive(_messages([11, 13], "evaluate", server_round=1), timeout=30)
    grid.script[14] = "gone"
    tracker.send_and_receive(_messages([12, 13], "train", server_round=2), timeout=30)
    query, train1, eval1, train2 = tracker.records
    assert [r["round"] for r in tracker.records] == [1, 1, 1, 2]  # the config's server-round
    assert lost_nodes(query) == lost_nodes(train1) == lost_nodes(eval1) == {}
    assert (train1["expected"], train1["received"], train1["not_sampled"]) == (2, 2, [12, 14])
    assert lost_nodes(train2) == {14: "not asked (offline: the SuperLink no longer lists it)"}
    assert (train2["expected"], train2["received"], train2["not_sampled"]) == (3, 2, [11])
    report = RoundReport(tracker.records, {}, {})
    assert report.lines()[0] == "round 1: query 4/4 replies, train 2/2 replies, evaluate 2/2 replies"
    assert report.all_nodes_message() is not None and "node 14" in report.all_nodes_message()


def test_tracker_counts_replies_and_names_each_lost_node(
    task_identity: None, caplog: pytest.LogCaptureFixture
) -> None:
    grid = ScriptedGrid({11: "ok", 12: "error", 13: "silent"})
    tracker = ReplyTracker(grid, [11, 12, 13])
    assert tracker.get_node_ids() == [11, 12, 13]  # everything else is forwarded
    with caplog.at_level(logging.INFO, logger="flwr"):
        replies = tracker.send_and_receive(_messages([11, 12, 13], "train"), timeout=30)
        tracker.send_and_receive(_messages([11, 12, 13], "evaluate"), timeout=30)
        grid.script[12], grid.script[13] = "ok", "gone"
        tracker.send_and_receive(_messages([11, 12], "train"), timeout=30)  # 13 not asked: offline
    assert len(replies) == 2 and grid.timeouts == [30, 30, 30]
    first, second, third = tracker.records
    assert (first["round"], first["phase"], second["round"], third["round"]) == (1, "train", 1, 2)
    assert (first["expected"], first["received"]) == (3, 1)
    assert first["ok"] == [11] and first["no_reply"] == [13] and list(first["failed"]) == ["12"]
    assert lost_nodes(first) == {
        12: "replied with an error (SuperNode is offline)",
        13: "no reply within 30 s",
    }
    assert lost_nodes(third) == {13: "not asked (offline: the SuperLink no longer lists it)"}
    assert third["names"] == {"11": "1:dom11", "12": "2:dom12"}  # learned from good replies
    logged = [r.getMessage() for r in caplog.records if "replies round" in r.getMessage()]
    assert logged[0].startswith("replies round 1 train: 1 of 3; lost: node 12 replied with an error")
    assert "node 13 no reply within 30 s" in logged[0]
    assert any(r.levelno == logging.WARNING for r in caplog.records if "replies round" in r.getMessage())


def _records(lost_in_round_2: bool) -> list[dict[str, Any]]:
    def rec(rnd: int, phase: str, ok: list[int], failed: dict[str, str]) -> dict[str, Any]:
        return {"round": rnd, "phase": phase, "expected": 2, "received": len(ok), "nodes": [5, 9],
                "sent": [5, 9], "ok": ok, "failed": failed, "no_reply": [], "not_sent": [],
                "timeout_s": 60.0, "names": {"5": "1:original", "9": "2:rotated"}}  # fmt: skip

    out = [rec(1, "train", [5, 9], {}), rec(1, "evaluate", [5, 9], {})]
    if lost_in_round_2:
        out += [rec(2, "train", [5], {"9": "node offline"}), rec(2, "evaluate", [5], {"9": "node offline"})]
    else:
        out += [rec(2, "train", [5, 9], {}), rec(2, "evaluate", [5, 9], {})]
    return out


def _run_dir(tmp_path: Path, lost: bool) -> Path:
    run = tmp_path / ("lost" if lost else "clean")
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"deployment": {"replies": _records(lost)}}))
    lines = [{"round": r, "target_acc": 0.5 + r / 10} for r in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


def test_round_report_lines_and_verdict(tmp_path: Path) -> None:
    clean = RoundReport.from_run_dir(_run_dir(tmp_path, lost=False))
    assert clean.lines() == [
        "round 1: train 2/2 replies, evaluate 2/2 replies, target acc 60.0%",
        "round 2: train 2/2 replies, evaluate 2/2 replies, target acc 70.0%",
    ]
    assert clean.all_nodes_message() is None
    lost = RoundReport.from_run_dir(_run_dir(tmp_path, lost=True), {9: "supernode-2"})
    assert lost.lines()[1] == (
        "round 2: train 1/2 replies, evaluate 1/2 replies, target acc 70.0%; "
        "LOST supernode-2 (node 9, 2:rotated) train: replied with an error (node offline)"
    )
    assert lost.all_nodes_message() == (
        "1 SuperNode(s) did not reply: supernode-2 (node 9, 2:rotated) in round(s) 2 (--require-all-nodes)"
    )
    assert "cannot confirm" in (RoundReport([]).all_nodes_message() or "")


def test_rounds_module_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "supernode-2.log"
    log.write_text("INFO : Starting\nINFO : SuperNode ID: 9\n")
    assert node_id_from_log(log.read_text().splitlines()) == 9
    clean, lost = _run_dir(tmp_path, lost=False), _run_dir(tmp_path, lost=True)
    assert main([str(clean), "--require-all-nodes"]) == 0
    assert main([str(lost)]) == 0  # reporting alone never fails the run
    assert "LOST node 9, 2:rotated train:" in capsys.readouterr().out  # no launcher names given
    code = main([str(lost), "--require-all-nodes", "--node-log", f"supernode-2={log}"])
    out, err = capsys.readouterr()
    assert code == EXIT_NODES_LOST
    assert "LOST supernode-2 (node 9, 2:rotated)" in out
    assert err.startswith("error: 1 SuperNode(s) did not reply: supernode-2")
    assert main([str(tmp_path), "--require-all-nodes"]) == 2  # not a run directory
    assert main([str(clean), "--node", "supernode-1=abc"]) == 2
    assert "error:" in capsys.readouterr().err


def test_node_id_sink_maps_launcher_names() -> None:
    seen: list[str] = []
    sink = NodeIdSink(seen.append)
    sink("[supernode-1] INFO :      SuperNode ID: 4711")
    sink("[superlink] INFO : SuperNode ID: 1")  # not a SuperNode's own line
    sink("[supernode-2] INFO :      SuperNode ID: 815")
    assert sink.names == {4711: "supernode-1", 815: "supernode-2"} and len(seen) == 3


# -- the CLI -----------------------------------------------------------------------------


def test_deploy_keys_says_created_kept_replaced(tmp_path: Path) -> None:
    from fedlab.cli.deploy import deploy_app

    runner = CliRunner()
    keys = str(tmp_path / "k")
    first = runner.invoke(deploy_app, ["keys", "--nodes", "1", "--out", keys])
    assert first.exit_code == 0 and "supernode-1: new key pair" in first.output
    assert "register the new public key(s)" in first.output
    pub = (tmp_path / "k" / "supernode-1" / "auth.pub").read_bytes()
    again = runner.invoke(deploy_app, ["keys", "--nodes", "2", "--out", keys])
    assert "supernode-1: existing key pair kept" in again.output
    assert "supernode-2: new key pair" in again.output
    assert (tmp_path / "k" / "supernode-1" / "auth.pub").read_bytes() == pub
    same = runner.invoke(deploy_app, ["keys", "--nodes", "2", "--out", keys])
    assert "all keys kept: nothing new to register" in same.output
    over = runner.invoke(deploy_app, ["keys", "--nodes", "1", "--out", keys, "--overwrite"])
    assert "supernode-1: key pair REPLACED (--overwrite)" in over.output
    assert (tmp_path / "k" / "supernode-1" / "auth.pub").read_bytes() != pub


@pytest.mark.parametrize(("lost", "require", "code"), [(False, True, 0), (True, False, 0), (True, True, 3)])
def test_deploy_local_reports_rounds_and_requires_all_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lost: bool, require: bool, code: int
) -> None:
    import fedlab.deploy.local as local
    from fedlab.cli.deploy import deploy_app

    run_dir = _run_dir(tmp_path, lost)

    def fake_run_local(opts: local.LocalOptions) -> local.LocalResult:
        opts.sink("[supernode-2] INFO :      SuperNode ID: 9")
        return local.LocalResult(7, "finished:completed", run_dir, 1.0, 1.0, [], [], None, [])

    monkeypatch.setattr(local, "run_local", fake_run_local)
    args = ["local", "--nodes", "2"] + (["--require-all-nodes"] if require else [])
    res = CliRunner().invoke(deploy_app, args)
    assert res.exit_code == code, res.output
    assert "round 1: train 2/2 replies" in res.output
    if lost:
        assert "LOST supernode-2 (node 9, 2:rotated)" in res.output
    if code:
        assert (
            "error: 1 SuperNode(s) did not reply: supernode-2 (node 9, 2:rotated) in round(s) 2" in res.output
        )


def test_run_config_keys_reach_the_simulation_config() -> None:
    """`flwr run --run-config` keys ([tool.flwr.app.config] in pyproject.toml) for sampling."""
    import tomllib

    from fedlab.config import SimulationConfig

    root = Path(__file__).resolve().parents[1]
    app_config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    defaults = SimulationConfig.from_flat(app_config).training
    assert (defaults.clients_per_round, defaults.eval_every, defaults.client_eval) == (0, 1, "sampled")
    flat = {**app_config, "clients-per-round": 2, "eval-every": 3, "client-eval": "none"}
    training = SimulationConfig.from_flat(flat).training
    assert (training.clients_per_round, training.eval_every, training.client_eval) == (2, 3, "none")
