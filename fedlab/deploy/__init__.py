"""Deploying fedlab's ServerApp/ClientApp on Flower's deployment engine.

Why a package of its own: simulation needs none of this. Deployment adds key material
(`certs`: a CA and the SuperLink's TLS certificate; SuperNode authentication keys), a
local multi-process launcher (`local`) that runs exactly the processes a real
deployment runs — what each Flower process is told (`flower_config`), the supervision that
streams their output and leaves none behind (`processes`), loopback ports and the TLS check
(`network`) — and the per-round report of which node answered (`rounds`). The
``fedlab deploy`` CLI is `fedlab.cli.deploy`. Container files live in ``docker/``.
"""

from __future__ import annotations
