"""Parsing batches of records away from the event loop, in a worker process.

Normalising a row (email-validator, phonenumbers, the API's models) costs tens of
microseconds of pure Python: thousands per batch would stall every request the process
serves, and a thread would still hold the GIL. A separate process parses batch N+1 while
the database applies batch N, which on a 2-core machine is most of the import's speed.
"""

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from app.customers.inputs import ProjectRules
from app.imports.columns import ColumnPlan
from app.imports.rows import ParsedRow, parse_row

_pool: ProcessPoolExecutor | None = None


def _parse_records(
    records: list[tuple[int, list[str]]],
    plan: ColumnPlan,
    rules: ProjectRules,
    list_separator: str,
) -> list[ParsedRow]:
    return [parse_row(number, cells, plan, rules, list_separator) for number, cells in records]


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        # spawn, not fork: the parent runs an event loop and holds database sockets.
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


def parse_in_background(
    records: list[tuple[int, list[str]]],
    plan: ColumnPlan,
    rules: ProjectRules,
    list_separator: str,
) -> "asyncio.Future[list[ParsedRow]]":
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(_executor(), _parse_records, records, plan, rules, list_separator)


def shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(cancel_futures=True)
        _pool = None
