"""`fedlab deploy ...`: certificates, SuperNode keys, and a local secured deployment.

A thin typer layer: the work is in `fedlab.deploy.certs` and `fedlab.deploy.local`, and
every user error is a one-line `FedlabError` that ``fedlab``'s main turns into
``error: ...`` / exit 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from fedlab.core.errors import FedlabError
from fedlab.deploy.certs import generate_certs, generate_node_keys

deploy_app = typer.Typer(
    name="deploy",
    help="Run fedlab on Flower's deployment engine (SuperLink, SuperNodes), secured with TLS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@deploy_app.command("certs")
def certs(
    out: Path = typer.Option(Path("certs"), "--out", help="Folder for ca.crt, server.pem, keys (0700)."),
    hostname: list[str] = typer.Option(
        [], "--hostname", help="Extra name/IP clients dial (repeatable), e.g. superlink for compose."
    ),
    days: int = typer.Option(365, min=1, help="Validity of the server certificate in days."),
    new_ca: bool = typer.Option(False, "--new-ca", help="Replace an existing CA (SuperNodes must get it)."),
) -> None:
    """CA + SuperLink TLS certificate (SANs: localhost, 127.0.0.1, ::1 + --hostname)"""
    paths = generate_certs(out, hostname, days=days, new_ca=new_ca)
    typer.echo(f"CA certificate      {paths.ca_cert}   (give to SuperNodes and the flwr CLI)")
    typer.echo(f"CA key              {paths.ca_key}   (keep offline)")
    typer.echo(f"server certificate  {paths.server_cert}   SANs: {', '.join(paths.sans)}")
    typer.echo(f"server key          {paths.server_key}")


@deploy_app.command("keys")
def keys(
    nodes: int = typer.Option(..., "--nodes", min=1, help="Number of SuperNodes."),
    out: Path = typer.Option(Path("keys"), "--out", help="Folder with one sub-folder per SuperNode."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing key pairs."),
) -> None:
    """SuperNode authentication key pairs (ECDSA P-384, OpenSSH) for `flwr supernode register`."""
    made = generate_node_keys(out, nodes, overwrite=overwrite)
    for node in made:
        what = {"created": "new key pair", "replaced": "key pair REPLACED (--overwrite)"}.get(
            node.key_status, "existing key pair kept (--overwrite replaces it)"
        )
        typer.echo(f"{node.name}: {what}: private {node.private_key}  public {node.public_key}")
    if any(n.key_status != "kept" for n in made):
        fresh = " ".join(str(n.public_key) for n in made if n.key_status != "kept")
        typer.echo(f"register the new public key(s) with the SuperLink: {fresh}")
        typer.echo("  flwr supernode register <dir>/auth.pub <superlink-connection>")
    else:
        typer.echo("all keys kept: nothing new to register")


@deploy_app.command("local")
def local(
    nodes: int = typer.Option(2, "--nodes", min=1, help="Number of SuperNodes."),
    tls: bool = typer.Option(True, "--tls/--insecure", help="TLS + SuperNode auth (default) or plain HTTP."),
    auth: bool = typer.Option(True, "--auth/--no-auth", help="SuperNode authentication (needs TLS)."),
    gate: bool = typer.Option(
        True, "--gate/--no-gate", help="SuperNodes connect through the Fleet gate (Fleet API only)."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="A fedlab TOML config (any federation, every setting); the flags below override it.",
    ),
    rounds: int | None = typer.Option(None, "--rounds", min=1, help="[default: 2, or the config's]"),
    federation: str | None = typer.Option(None, "--federation", help="[default: digits, or the config's]"),
    strategy: str | None = typer.Option(None, "--strategy", help="[default: fedavg, or the config's]"),
    target: str | None = typer.Option(None, "--target", help="Target domain (default: the app's)."),
    domains: str | None = typer.Option(None, "--domains", help="Comma-separated domain per SuperNode."),
    local_steps: int | None = typer.Option(
        None, "--local-steps", min=1, help="[default: 5, or the config's]"
    ),
    seed: int | None = typer.Option(None, "--seed", help="[default: 0, or the config's]"),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="File-based federations: the server's and each SuperNode's data folder."
    ),
    out: Path = typer.Option(Path("runs/deploy"), "--out", help="Where the ServerApp writes its run dir."),
    certs_dir: Path | None = typer.Option(None, "--certs", help="Reuse `fedlab deploy certs` output."),
    app_dir: Path | None = typer.Option(None, "--app", help="Flower app folder (default: this checkout)."),
    timeout: float = typer.Option(1800.0, "--timeout", help="Seconds for the whole run."),
    round_timeout: float = typer.Option(300.0, "--round-timeout", help="Seconds to wait for replies."),
    keep_workdir: bool = typer.Option(False, "--keep-workdir", help="Keep logs/keys in the temp folder."),
    require_all_nodes: bool = typer.Option(
        False, "--require-all-nodes", help="Exit 3 if any SuperNode missed a round (default: report only)."
    ),
) -> None:
    """Start a SuperLink + SuperNodes on 127.0.0.1, run the app with `flwr run`, stop everything."""
    from fedlab.deploy.local import LocalOptions, run_local
    from fedlab.deploy.rounds import EXIT_NODES_LOST, NodeIdSink, RoundReport

    sink = NodeIdSink(LocalOptions().sink)  # learns which node id each supernode-N got
    cfg = None
    if config is not None:  # the config decides; explicit flags still win (as in `fedlab simulate`)
        from fedlab.config import load_simulation_config

        flags = {"training.rounds": rounds, "training.local_steps": local_steps, "seed": seed,
                 "training.strategy": strategy, "federation.name": federation, "training.target": target,
                 "federation.data_dir": str(data_dir) if data_dir else None}  # fmt: skip
        cfg = load_simulation_config(config, flags)
        from fedlab.runs.select import SELECT

        if cfg.training.strategy == SELECT:  # the choice runs simulations; a deployment runs one strategy
            from fedlab.core.errors import ConfigError

            raise ConfigError(
                f"{config}: training.strategy {SELECT!r} chooses FedKA or FedAvg by simulating the sources' "
                "pseudo-targets and cannot be deployed; deploy the strategy it chose (`selection.chosen` "
                "in the simulation's summary.json) with --strategy fedka or --strategy fedavg"
            )

    # run_local prints the --insecure / --no-auth warning (also for programmatic callers).
    opts = LocalOptions(
        nodes=nodes,
        tls=tls,
        auth=auth and tls,
        gate=gate,
        rounds=2 if rounds is None else rounds,
        federation=federation or "digits",
        strategy=strategy or "fedavg",
        target=target,
        domains=[d.strip() for d in domains.split(",") if d.strip()] if domains else None,
        local_steps=5 if local_steps is None else local_steps,
        seed=0 if seed is None else seed,
        config=cfg,
        data_dir=data_dir,
        out=out,
        certs_dir=certs_dir,
        app_dir=app_dir,
        timeout=timeout,
        round_timeout=round_timeout,
        keep_workdir=keep_workdir,
        sink=sink,
    )
    result = run_local(opts)
    if not result.ok:
        raise FedlabError(f"run {result.run_id} ended with status {result.status}; see the [serverapp] log")
    typer.echo(f"run {result.run_id}: {result.status} in {result.seconds_run:.1f} s")
    typer.echo(f"run directory: {result.run_dir}")
    if result.workdir is not None:
        typer.echo(f"logs and key material: {result.workdir}")
    if result.run_dir is not None and (result.run_dir / "summary.json").is_file():
        report = RoundReport.from_run_dir(result.run_dir, sink.names)
    else:  # the ServerApp's log never named its run directory: nothing to count replies from
        report = RoundReport([], sink.names)
    for line in report.lines():
        typer.echo(line)
    if require_all_nodes and (message := report.all_nodes_message()):
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_NODES_LOST)
