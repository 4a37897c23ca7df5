"""Gateway hop: a bare aiohttp handler vs the same request through gateway → NATS → service.

Prints requests/s and p50/p99 of each, interleaved in one run, and the ratio gateway/bare,
with and without uvloop, and with every request traced (OTLP export to a sink). Run: ``make bench`` or ``.venv/bin/python -m bench.gateway_hop``.
"""

from __future__ import annotations

import asyncio
import os

from bench.common import Result, bench_parser, best, embedded_infra, load, process, python, record
from libs.common.infra import free_port


def main() -> None:
    """Run the benchmark and print its figures."""
    args = bench_parser(__doc__, seconds=5.0, rounds=3).parse_args()
    with embedded_infra() as infra:
        # The third pass traces every request (OTLP to the bare server's sink): its ratio
        # beside the first is what tracing costs; off, it costs nothing by construction.
        for uvloop, traced in ((True, False), (False, False), (True, True)):
            flag = "1" if uvloop else "0"
            env = {
                "TETHER_DATABASE_URL": infra.database_url,
                "TETHER_NATS_URL": infra.nats_url,
                "TETHER_UVLOOP": flag,
                "TETHER_LOG_FORMAT": "json",
                "TETHER_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info"),
            }
            bare_port, gw_port, health = free_port(), free_port(), free_port()
            bare_args = python(
                "bench.bare_server", str(bare_port), *([] if uvloop else ["--no-uvloop"])
            )
            bare_url = f"http://127.0.0.1:{bare_port}/ping"
            if traced:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{bare_port}"
            gw_url = f"http://127.0.0.1:{gw_port}/system/ping/flows"
            with (
                process(bare_args, {}, bare_url),
                process(
                    python("services.flows"),
                    {**env, "TETHER_HEALTH_PORT": str(health)},
                    f"http://127.0.0.1:{health}/readyz",
                ),
                process(
                    python("services.gateway"), {**env, "TETHER_GATEWAY_PORT": str(gw_port)}, gw_url
                ),
            ):
                bare: list[Result] = []
                hop: list[Result] = []
                kw = {"seconds": args.seconds, "concurrency": args.concurrency}
                asyncio.run(load("warm-up", gw_url, seconds=1, concurrency=args.concurrency))
                for _ in range(args.rounds):  # interleaved: the machine's noise hits both alike
                    bare.append(asyncio.run(load("bare aiohttp handler", bare_url, **kw)))
                    hop.append(asyncio.run(load("gateway → NATS → flows ping", gw_url, **kw)))
            b, h = best(bare), best(hop)
            variant = f"uvloop {'on' if uvloop else 'off'}" + (", traced" if traced else "")
            print(f"\n{variant}  (best of {args.rounds}, {args.concurrency} concurrent)")
            print(b.line())
            print(h.line())
            print(f"ratio gateway/bare: {h.rps / b.rps:.2f}")
            record("gateway_hop", f"gateway/bare, {variant}", h.rps / b.rps)


if __name__ == "__main__":
    main()
