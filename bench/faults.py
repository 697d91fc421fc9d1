"""PostgreSQL restarted under load, several times: what the outages cost and how soon the
service served again, with the data checked after each.

    .venv/bin/python -m bench.faults [--rounds 5] [--mode fast|immediate] [--clients 8]
        [--outage 1.0]

Starts a private PostgreSQL (the embedded server's binaries, a temp folder; never the
machine's server), migrates it, and runs the app in this process. Each round: a new
project; 8 clients loop identify (a new customer) then an action with an Idempotency-Key,
sending a request answered 503 again after 0.1 s until it is served; after 1 s the server
is stopped (`pg_ctl stop -m fast`, or `-m immediate`: a crash), left down `--outage`
seconds and started; the load goes on 1 s after the first request served again. It is
the scenario of tests/faults/test_restart.py, repeated.

Per round: requests and their statuses, requests in flight when the stop began and how
many of them got a 503, the outage (stop began to server accepting again), recovery (the
server accepting again to the first request served that was sent after it; next to it,
how long a bare asyncpg connection and `SELECT 1` took at that moment), requests
resent, 503s whose change had committed after all, and the data checks (customers
missing, duplicated or half applied; actions missing or duplicated; 2xx answers not in
the database), which must all be 0. Then medians. Exit status 1 if any check failed.
"""

import argparse
import asyncio
import json
import sys
from typing import Any

from tests.faults.private_postgres import PrivatePostgres, private_postgres
from tests.faults.restart_load import integrity, median, restart_private_server_under_load
from tests.helpers import app_running, asgi_client


async def _round(
    server: PrivatePostgres, number: int, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, int]]:
    run, stored = await restart_private_server_under_load(
        server,
        args.mode,
        clients=args.clients,
        tag=f"r{number}",
        warmup=1.0,
        outage=args.outage,
        settle=1.0,
    )
    figures = run.figures()
    faults = integrity(run, stored)
    bad_answers = set(figures["statuses"]) - {200, 201, 503}
    faults["answers_not_2xx_or_503"] = sum(figures["statuses"][s] for s in bad_answers)
    faults["problems_malformed"] = sum(1 for a in run.attempts if not a.well_formed)
    faults["unserved"] = figures["unserved"]
    return figures, faults


async def _main(args: argparse.Namespace) -> int:
    rounds: list[dict[str, Any]] = []
    failed = False
    async with private_postgres() as server:
        # An app before the rounds, so the first round does not pay for the first imports.
        async with app_running(server.url) as app, asgi_client(app) as http:
            await http.get("/readyz")
        for number in range(1, args.rounds + 1):
            figures, faults = await _round(server, number, args)
            rounds.append(figures)
            failed = failed or any(faults.values())
            print(json.dumps({"round": number, "mode": args.mode} | figures | {"faults": faults}))
    recoveries = [r["recovery_s"] for r in rounds if r["recovery_s"] is not None]
    summary = {
        "mode": args.mode,
        "rounds": len(rounds),
        "clients": args.clients,
        "median_recovery_s": median(recoveries) if recoveries else None,
        "max_recovery_s": max(recoveries) if recoveries else None,
        "median_raw_reconnect_s": median([r["raw_reconnect_s"] for r in rounds]),
        "median_outage_s": median([r["outage_s"] for r in rounds]),
        "median_503": median([r["statuses"].get(503, 0) for r in rounds]),
        "median_in_flight_at_stop": median([r["in_flight_at_stop"] for r in rounds]),
        "median_in_flight_failed_503": median([r["in_flight_failed_503"] for r in rounds]),
        "applied_despite_503": sum(r["applied_despite_503"] for r in rounds),
        "data_faults": "none" if not failed else "SEE ROUNDS",
    }
    print(json.dumps(summary))
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mode", choices=["fast", "immediate"], default="fast")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--outage", type=float, default=1.0, help="seconds the server stays down")
    sys.exit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
