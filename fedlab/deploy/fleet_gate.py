"""The Fleet gate: the only SuperLink port a site sees, forwarding the Fleet API and nothing else.

Why: Flower 1.42 serves the Fleet API (SuperNodes), the Control API (``flwr run``/``ls``/
``supernode register``) and the runtime API (ServerApp) on ONE HTTP port, and without Flower
Enterprise's account authentication the Control API trusts anyone who completes the TLS
handshake — i.e. anyone holding the CA certificate every site receives (issue #27: with only
``ca.crt`` a site listed the runs and registered a new SuperNode key mid-federation). So the
SuperLink itself listens on 127.0.0.1 (its Control API is the operator's, on the SuperLink's
host) and this gate, on the address SuperNodes reach, terminates TLS with the SuperLink's
certificate and forwards only ``/v1/fleet/*`` and ``/health`` to it; every other path gets
403. Requests and replies pass unchanged (SuperNode authentication signs them end to end).

    python -m fedlab.deploy.fleet_gate --listen 0.0.0.0:9092 --superlink 127.0.0.1:9093 \\
        --certfile server.pem --keyfile server.key --ca ca.crt
"""

from __future__ import annotations

import argparse
from typing import Any

ALLOWED_PREFIXES = ("/v1/fleet/",)
ALLOWED_PATHS = ("/health",)
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "content-length", "host",
}  # fmt: skip


def allowed(path: str) -> bool:
    """Whether the gate forwards a request for `path` (Fleet API and health only)."""
    return path in ALLOWED_PATHS or any(path.startswith(p) for p in ALLOWED_PREFIXES)


def make_app(upstream: str, ca: str | None, timeout: float = 600.0) -> Any:
    """The gate's ASGI app, forwarding allowed requests to `upstream` (``https://host:port``)."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=upstream, verify=ca if ca else False, timeout=timeout)

    async def forward(request: Request) -> Response:
        path = request.url.path
        if not allowed(path):
            return PlainTextResponse(
                "fedlab fleet gate: only the Fleet API is served here; the Control API is on the "
                "SuperLink's host\n",
                status_code=403,
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        reply = await client.request(
            request.method,
            path,
            params=request.query_params,
            content=await request.body(),
            headers=headers,
        )
        out = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        return Response(reply.content, status_code=reply.status_code, headers=out)

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


def main(argv: list[str] | None = None) -> None:
    """Serve the gate (blocking) until SIGTERM / Ctrl-C."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Forward only the Fleet API to a SuperLink.")
    parser.add_argument("--listen", required=True, help="host:port SuperNodes connect to")
    parser.add_argument("--superlink", required=True, help="host:port of the SuperLink (127.0.0.1)")
    parser.add_argument("--certfile", help="the SuperLink's certificate (TLS towards SuperNodes)")
    parser.add_argument("--keyfile", help="its private key")
    parser.add_argument("--ca", help="CA certificate to verify the SuperLink (omit: --insecure)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    scheme = "https" if args.ca else "http"
    app = make_app(f"{scheme}://{args.superlink}", args.ca)
    tls = {"ssl_certfile": args.certfile, "ssl_keyfile": args.keyfile} if args.certfile else {}
    print(f"fleet gate on {args.listen} -> {args.superlink} (Fleet API only)", flush=True)
    uvicorn.run(app, host=host, port=int(port), log_level="warning", **tls)


if __name__ == "__main__":
    main()
