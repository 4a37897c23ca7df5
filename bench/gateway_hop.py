"""Gateway hop: a bare aiohttp handler vs the same request through gateway → NATS → service.

Beside both, the *raw hop*: a bare handler making one plain nats-py request to a plain
subscriber process, the least a hop can cost with these libraries on this machine (every
process shares its cores). Prints requests/s and p50/p99 of each, interleaved in one run,
the ratios gateway/bare and gateway/raw hop,
with and without uvloop, and with every request traced (OTLP export to a sink). Run: ``make bench`` or ``.venv/bin/python -m bench.gateway_hop``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess

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
            loop_flag = [] if uvloop else ["--no-uvloop"]
            bare_args = python(
                "bench.bare_server", str(bare_port), "--nats", infra.nats_url, *loop_flag
            )
            bare_url = f"http://127.0.0.1:{bare_port}/ping"
            raw_url = f"http://127.0.0.1:{bare_port}/raw-hop"
            responder = python("bench.bare_server", "--responder", infra.nats_url, *loop_flag)
            if traced:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{bare_port}"
            gw_url = f"http://127.0.0.1:{gw_port}/system/ping/flows"
            with (
                subprocess.Popen(responder, env=os.environ) as raw_responder,
                process(bare_args, {}, raw_url),
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
                raw: list[Result] = []
                hop: list[Result] = []
                kw = {"seconds": args.seconds, "concurrency": args.concurrency}
                asyncio.run(load("warm-up", gw_url, seconds=1, concurrency=args.concurrency))
                for _ in range(args.rounds):  # interleaved: the machine's noise hits them alike
                    bare.append(asyncio.run(load("bare aiohttp handler", bare_url, **kw)))
                    raw.append(asyncio.run(load("raw hop: bare + nats-py request", raw_url, **kw)))
                    hop.append(asyncio.run(load("gateway → NATS → flows ping", gw_url, **kw)))
                raw_responder.terminate()
            b, r, h = best(bare), best(raw), best(hop)
            variant = f"uvloop {'on' if uvloop else 'off'}" + (", traced" if traced else "")
            print(f"\n{variant}  (best of {args.rounds}, {args.concurrency} concurrent)")
            print(b.line())
            print(r.line())
            print(h.line())
            print(f"ratio gateway/bare: {h.rps / b.rps:.2f}   (raw hop/bare: {r.rps / b.rps:.2f})")
            print(f"ratio gateway/raw hop: {h.rps / r.rps:.2f}")
            record("gateway_hop", f"gateway/bare, {variant}", h.rps / b.rps)
            record("gateway_hop", f"raw hop/bare, {variant}", r.rps / b.rps)
            record("gateway_hop", f"gateway/raw hop, {variant}", h.rps / r.rps)


if __name__ == "__main__":
    main()
