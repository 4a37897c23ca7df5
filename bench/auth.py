"""Auth: GET /customers/me through the gateway with a hot token and with a fresh token each time.

Baselines in the same run: an aiohttp handler doing one asyncpg primary-key select, and one
doing one PyJWT HS256 verification. Run: ``.venv/bin/python -m bench.auth``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator

import jwt

from bench.auth_baselines import SECRET
from bench.common import ROOT, Result, best, embedded_infra, load, process, python
from libs.common.config import SERVICES
from libs.common.infra import free_port


def _tokens(key: str, secret: str, count: int) -> Iterator[dict[str, str]]:
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
        for i in range(count)
    ]
    return iter(made)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    kw = {"seconds": args.seconds, "concurrency": args.concurrency}
    with embedded_infra() as infra:
        env = {
            "TETHER_DATABASE_URL": infra.database_url,
            "TETHER_NATS_URL": infra.nats_url,
            "TETHER_MASTER_KEYS": "b:" + "A" * 43 + "=",
        }
        subprocess.run(
            python("libs.cli", "migrate"),
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        health = {name: free_port() for name in SERVICES}
        gw, base = free_port(), free_port()
        procs = [
            process(
                python(f"services.{n}"),
                {**env, "TETHER_HEALTH_PORT": str(p)},
                f"http://127.0.0.1:{p}/readyz",
            )
            for n, p in health.items()
        ]
        procs.append(
            process(
                python("services.gateway"),
                {**env, "TETHER_GATEWAY_PORT": str(gw)},
                f"http://127.0.0.1:{gw}/healthz",
            )
        )
        procs.append(
            process(
                python("bench.auth_baselines", str(base), infra.database_url),
                {},
                f"http://127.0.0.1:{base}/select",
            )
        )
        with contextlib.ExitStack() as running:
            for p in procs:
                running.enter_context(p)
            created = json.loads(
                subprocess.run(
                    python("libs.cli", "workspace", "create", "--name", "bench", "--json"),
                    env=env,
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            key, secret = created["key"], created["secret"]
            hot = next(_tokens(key, secret, 1))
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
                baseline_token = {
                    "Authorization": "Bearer "
                    + jwt.encode(
                        {"id": "c", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256"
                    )
                }
                rows["verify"].append(
                    asyncio.run(
                        load(
                            "baseline: PyJWT HS256 verify",
                            f"http://127.0.0.1:{base}/verify",
                            headers=baseline_token,
                            **kw,
                        )
                    )
                )
                fresh = _tokens(key, secret, 60_000)
                rows["fresh"].append(
                    asyncio.run(load("(b) /customers/me, fresh token", me, per_request=fresh, **kw))
                )
    b = {k: best(v) for k, v in rows.items()}
    print(f"\nbest of {args.rounds}, {args.concurrency} concurrent")
    for k in ("select", "hot", "verify", "fresh"):
        print(b[k].line())
    print(f"(a) hot token / asyncpg select:  {b['hot'].rps / b['select'].rps:.2f}   (goal ≥ 0.7)")
    print(f"(b) fresh token / PyJWT verify: {b['fresh'].rps / b['verify'].rps:.2f}   (goal ≥ 0.5)")


if __name__ == "__main__":
    main()
