"""Auth: GET /customers/me through the gateway with a hot token and with a fresh token each time.

Baselines in the same run: an aiohttp handler doing one asyncpg primary-key select, and one
doing one PyJWT HS256 verification (of a fresh token per request, as the gateway gets). Run: ``.venv/bin/python -m bench.auth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import jwt

from bench.auth_baselines import SECRET
from bench.common import (
    Result,
    bench_parser,
    best,
    cli,
    create_workspace,
    embedded_infra,
    load,
    process,
    python,
    record,
    stack_env,
    stack_processes,
)
from libs.common.config import SERVICES
from libs.common.infra import free_port


def tokens(key: str, secret: str, count: int, first: int = 0) -> Iterator[dict[str, str]]:
    """Return ``count`` Authorization headers, each a distinct token of the workspace.

    Tokens are numbered from ``first``: calls with ranges that do not overlap never repeat one.
    """
    now = int(time.time())
    made = [
        {
            "Authorization": "Bearer "
            + jwt.encode(
                {"iss": key, "id": f"c{i % 500}", "iat": now, "exp": now + 3600, "n": i},
                secret,
                algorithm="HS256",
            )
        }
        for i in range(first, first + count)
    ]
    return iter(made)


def baseline_tokens(count: int) -> Iterator[dict[str, str]]:
    """Return ``count`` Authorization headers, each a distinct token the baseline verifies."""
    now = int(time.time())
    return iter(
        [
            {
                "Authorization": "Bearer "
                + jwt.encode({"id": f"c{i % 500}", "exp": now + 3600, "n": i}, SECRET, "HS256")
            }
            for i in range(count)
        ]
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    args = bench_parser(__doc__).parse_args()
    kw = {"seconds": args.seconds, "concurrency": args.concurrency}
    with embedded_infra() as infra:
        env = stack_env(infra)
        cli(env, "migrate")
        gw, base = free_port(), free_port()
        with contextlib.ExitStack() as running:
            stack_processes(running, env, list(SERVICES), gw)
            running.enter_context(
                process(
                    python("bench.auth_baselines", str(base), infra.database_url),
                    {},
                    f"http://127.0.0.1:{base}/select",
                )
            )
            created = create_workspace(env)
            key, secret = created["key"], created["secret"]
            hot = next(tokens(key, secret, 1))
            me = f"http://127.0.0.1:{gw}/customers/me"
            rows: dict[str, list[Result]] = {k: [] for k in ("select", "verify", "hot", "fresh")}
            asyncio.run(load("warm-up", me, headers=hot, seconds=1, concurrency=4))
            for _ in range(args.rounds):
                rows["select"].append(
                    asyncio.run(
                        load("baseline: asyncpg PK select", f"http://127.0.0.1:{base}/select", **kw)
                    )
                )
                rows["hot"].append(
                    asyncio.run(load("(a) /customers/me, hot token", me, headers=hot, **kw))
                )
                # A fresh token per request on both sides: the client's work is the same.
                rows["verify"].append(
                    asyncio.run(
                        load(
                            "baseline: PyJWT HS256 verify",
                            f"http://127.0.0.1:{base}/verify",
                            per_request=baseline_tokens(60_000),
                            **kw,
                        )
                    )
                )
                fresh = tokens(key, secret, 60_000)
                rows["fresh"].append(
                    asyncio.run(load("(b) /customers/me, fresh token", me, per_request=fresh, **kw))
                )
    b = {k: best(v) for k, v in rows.items()}
    print(f"\nbest of {args.rounds}, {args.concurrency} concurrent")
    for k in ("select", "hot", "verify", "fresh"):
        print(b[k].line())
    print(f"(a) hot token / asyncpg select:  {b['hot'].rps / b['select'].rps:.2f}   (goal ≥ 0.7)")
    record("auth", "(a) hot token/asyncpg select", b["hot"].rps / b["select"].rps, "≥ 0.7")
    print(f"(b) fresh token / PyJWT verify: {b['fresh'].rps / b['verify'].rps:.2f}   (goal ≥ 0.5)")
    record("auth", "(b) fresh token/PyJWT verify", b["fresh"].rps / b["verify"].rps, "≥ 0.5")


if __name__ == "__main__":
    main()
