"""An open-loop load generator: the soak's mix at a constant arrival rate.

`python -m bench.open_loop --config <json>` (bench/soak.py starts it as a separate process;
the API key comes in the environment, BENCH_API_KEY). Request i is due at start + i/rate,
whatever happened to the requests before it; its latency is measured from that due time,
not from when a connection was free, so a slow server is not hidden by a generator that
waits for it (coordinated omission). A request that has to wait for a connection waits
inside its latency.

HTTP/1.1 keep-alive on asyncio streams, responses parsed by httptools, on uvloop (both
come with uvicorn[standard]): a few hundred requests per second cost this process a small
share of a core, which it reports (`generator.cpu_cores`), with how late it fired requests
(`schedule_lag_ms`): a generator that cannot keep its schedule says so.

Every answer is checked: the status each kind must have, and for identify the `result`,
for a subscription change `"changed":true`. Each one that is not right is an error
(kept with a sample of its body), as is a connection error or a request not answered within
`timeout_s`.

Prints one JSON line per interval (`{"interval": ...}`) while it runs and the summary
(`{"summary": ...}`) at the end. `--smoke` sends one request of each kind, one after the
other, and exits 1 if any is wrong.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httptools
import uvloop

from bench.measure import percentile
from bench.mix import KINDS, MIX, POINT_ACCOUNT, RICH_CUSTOMERS, Kind

# An idle connection older than this is closed rather than reused: uvicorn closes idle
# keep-alive connections after 5 s, and a request sent as it does so would fail.
_IDLE_REUSE_SECONDS = 3.0
_ERROR_SAMPLES = 10

Check = Callable[[int, bytes], str | None]


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    ids_file: str
    seed_count: int
    run_prefix: str
    rate: float  # requests per second
    duration: float  # seconds
    max_connections: int = 256
    timeout_s: float = 30.0
    interval_s: float = 10.0
    subscription_first: int = 1
    subscription_last: int = 1
    seed: int = 1


@dataclass
class Request:
    kind: str
    raw: bytes
    check: Check
    subscription_customer: int | None = None
    # The status before this change: restored if the API refused the request unread.
    subscription_previous: str | None = None


class _Response:
    """httptools callbacks: the body, keep-alive and the end of one response."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.complete = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_headers_complete(self) -> None:
        # Only meaningful here: once the message is complete the parser has reset.
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.last_used = time.monotonic()
        self.requests = 0

    async def send(self, raw: bytes) -> tuple[int, bytes, bool]:
        """(status, body, keep-alive). ConnectionResetError when the peer closed the
        connection before answering a byte (the request can be sent again elsewhere)."""
        self.writer.write(raw)
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        response.parser = parser
        received = 0
        while not response.complete:
            data = await self.reader.read(65536)
            if not data:
                if received == 0:
                    raise ConnectionResetError("closed before answering")
                raise ConnectionError("closed in the middle of a response")
            received += len(data)
            parser.feed_data(data)
        self.requests += 1
        self.last_used = time.monotonic()
        return parser.get_status_code(), bytes(response.body), response.keep_alive

    def close(self) -> None:
        self.writer.close()


class Pool:
    """At most `limit` connections; the most recently used idle one is reused first."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[Connection] = []
        self.opened = 0

    async def acquire(self) -> tuple[Connection, bool]:
        """(connection, reused)."""
        await self._slots.acquire()
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.last_used < _IDLE_REUSE_SECONDS:
                return connection, True
            connection.close()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except BaseException:
            self._slots.release()
            raise
        self.opened += 1
        return Connection(reader, writer), False

    def release(self, connection: Connection, reusable: bool) -> None:
        if reusable:
            self._idle.append(connection)
        else:
            connection.close()
        self._slots.release()

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _status_check(expected: int, *needles: bytes) -> Check:
    def check(status: int, body: bytes) -> str | None:
        if status != expected:
            return f"HTTP {status}, expected {expected}"
        for needle in needles:
            if needle not in body:
                return f"HTTP {status} without {needle.decode()}"
        return None

    return check


class RequestMaker:
    """Builds each kind's request as the wrk script does (bench/lua/mix.lua)."""

    def __init__(self, config: Config, api_key: str, ids: list[str]) -> None:
        self.config = config
        self.ids = ids
        self.rng = random.Random(config.seed)
        self.counter = 0
        self.headers = (
            f"Host: {config.host}:{config.port}\r\n"
            f"Authorization: Bearer {api_key}\r\n"
            "Content-Type: application/json\r\n"
        )
        # The status this generator last set per customer (its own range: it set them all).
        self.subscription_status: dict[int, str] = {}
        self.subscriptions_in_flight: set[int] = set()
        self._kinds = [kind.name for kind in MIX]
        self._weights = [kind.weight for kind in MIX]

    def choose(self) -> str:
        return self.rng.choices(self._kinds, self._weights)[0]

    def _raw(self, method: str, path: str, body: Any = None, extra: str = "") -> bytes:
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self.headers}{extra}"
        if body is not None:
            head += f"Content-Length: {len(payload)}\r\n"
        return (head + "\r\n").encode() + payload

    def _unique(self) -> str:
        self.counter += 1
        return f"{self.config.run_prefix}-{self.counter}"

    def _seed(self, first: int = 1) -> int:
        return self.rng.randint(first, self.config.seed_count)

    def make(self, kind: str) -> Request:
        kind_info: Kind = KINDS[kind]
        check = _status_check(kind_info.expected_status)
        if kind == "action":
            customer_id = self.ids[self._seed() - 1]
            body = {
                "customer": {"customer_id": customer_id},
                "type": "bench.purchase",
                "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "payload": {
                    "sku": f"SKU-{self.rng.randint(1, 9_999_999):07d}",
                    "price": self.rng.randint(0, 9999) / 100,
                    "currency": "EUR",
                    "quantity": self.rng.randint(1, 9),
                    "store": "web-eu-1",
                    "channel": "app",
                },
                "external_id": self._unique(),
            }
            return Request(kind, self._raw("POST", "/v1/actions", body), check)
        if kind in ("identify_existing", "identify_new"):
            if kind == "identify_new":
                email = f"{self._unique()}@bench.example"
                check = _status_check(201, b'"result":"created"')
            else:
                email = f"seed{self._seed()}@bench.example"
                check = _status_check(200, b'"result":"unchanged"')
            body = {"identifiers": {"email": email}, "profile": {"first_name": "Bench"}}
            return Request(kind, self._raw("POST", "/v1/customers/identify", body), check)
        if kind == "lookup_email":
            path = f"/v1/customers/lookup?email=seed{self._seed()}%40bench.example"
            return Request(kind, self._raw("GET", path), check)
        if kind in ("points_accrual", "points_redemption"):
            if kind == "points_accrual":
                customer = self._seed(RICH_CUSTOMERS + 1)
                body = {"account": POINT_ACCOUNT, "type": "accrual", "amount": "10"}
            else:
                customer = self.rng.randint(1, RICH_CUSTOMERS)
                body = {"account": POINT_ACCOUNT, "type": "redemption", "amount": "1"}
            key = self._unique()
            body["reference"] = key
            path = f"/v1/customers/{self.ids[customer - 1]}/points/transactions"
            raw = self._raw("POST", path, body, extra=f"Idempotency-Key: {key}\r\n")
            return Request(kind, raw, check)
        if kind == "subscription_change":
            return self._subscription_change()
        raise ValueError(f"unknown kind {kind}")

    def _subscription_change(self) -> Request:
        first, last = self.config.subscription_first, self.config.subscription_last
        customer = self.rng.randint(first, last)
        # Never two decisions for one customer in flight: they could be applied in the
        # other order, and the status this generator expects would be wrong.
        while customer in self.subscriptions_in_flight:
            customer = self.rng.randint(first, last)
        previous = self.subscription_status.get(customer)
        status = "unsubscribed" if previous == "subscribed" else "subscribed"
        self.subscription_status[customer] = status
        self.subscriptions_in_flight.add(customer)
        body = {"subscriptions": [{"channel": "email", "status": status, "source": "bench"}]}
        path = f"/v1/customers/{self.ids[customer - 1]}/subscriptions"
        check = _status_check(200, b'"changed":true', f'"status":"{status}"'.encode())
        return Request(
            "subscription_change",
            self._raw("PUT", path, body),
            check,
            subscription_customer=customer,
            subscription_previous=previous,
        )

    def done(self, request: Request, *, refused: bool) -> None:
        """`refused`: the API answered overloaded, so the request changed nothing."""
        customer = request.subscription_customer
        if customer is None:
            return
        self.subscriptions_in_flight.discard(customer)
        if refused:
            if request.subscription_previous is None:
                self.subscription_status.pop(customer, None)
            else:
                self.subscription_status[customer] = request.subscription_previous


@dataclass
class Tally:
    """Latencies (ms) of the right answers and the errors, per kind."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {k.name: [] for k in MIX})
    errors: dict[str, int] = field(default_factory=lambda: {k.name: 0 for k in MIX})
    error_samples: list[str] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=lambda: {k.name: 0 for k in MIX})
    # Of the errors, those the API refused at once as overloaded (503, admission control).
    shed: dict[str, int] = field(default_factory=lambda: {k.name: 0 for k in MIX})

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < _ERROR_SAMPLES:
            self.error_samples.append(f"{kind}: {detail}")


def latency_summary(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "p999_ms": None}
    return {
        "count": len(ordered),
        "mean_ms": sum(ordered) / len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "p999_ms": percentile(ordered, 99.9),
        "max_ms": ordered[-1],
    }


class OpenLoop:
    def __init__(self, config: Config, api_key: str, ids: list[str]) -> None:
        self.config = config
        self.maker = RequestMaker(config, api_key, ids)
        self.pool = Pool(config.host, config.port, config.max_connections)
        self.tally = Tally()
        self.lags_ms: list[float] = []
        self.retries = 0
        self.in_flight = 0
        self._window: list[float] = []
        self._window_errors = 0

    async def _send(self, request: Request) -> tuple[int, bytes]:
        for attempt in range(2):
            connection, reused = await self.pool.acquire()
            try:
                status, body, keep_alive = await connection.send(request.raw)
            except ConnectionResetError:
                self.pool.release(connection, reusable=False)
                # A reused connection the server had just closed: nothing was processed.
                if reused and attempt == 0:
                    self.retries += 1
                    continue
                raise
            except BaseException:
                self.pool.release(connection, reusable=False)
                raise
            self.pool.release(connection, reusable=keep_alive)
            return status, body
        raise AssertionError("unreachable")

    async def _one(self, request: Request, due: float) -> None:
        self.in_flight += 1
        shed = False
        try:
            status, body = await asyncio.wait_for(self._send(request), self.config.timeout_s)
        except TimeoutError:
            self._fail(request.kind, f"no answer within {self.config.timeout_s:.0f}s")
        except OSError as error:
            self._fail(request.kind, f"connection error: {error!r}")
        else:
            latency_ms = (time.monotonic() - due) * 1000.0
            problem = request.check(status, body)
            shed = status == 503 and b"overloaded" in body
            if shed:
                self.tally.shed[request.kind] += 1
            if problem is None:
                self.tally.latencies[request.kind].append(latency_ms)
                self._window.append(latency_ms)
            else:
                self._fail(request.kind, f"{problem}: {body[:300].decode(errors='replace')}")
        finally:
            self.in_flight -= 1
            self.maker.done(request, refused=shed)

    def _fail(self, kind: str, detail: str) -> None:
        self.tally.error(kind, detail)
        self._window_errors += 1

    async def _report_intervals(self, started: float) -> None:
        number = 0
        while True:
            number += 1
            await asyncio.sleep(started + number * self.config.interval_s - time.monotonic())
            window, self._window = sorted(self._window), []
            errors, self._window_errors = self._window_errors, 0
            line = {
                "interval": number,
                "t_s": round(time.monotonic() - started, 1),
                "completed": len(window),
                "errors": errors,
                "in_flight": self.in_flight,
                "p50_ms": percentile(window, 50) if window else None,
                "p99_ms": percentile(window, 99) if window else None,
                "connections_opened": self.pool.opened,
            }
            print(json.dumps(line), flush=True)

    async def run(self) -> dict[str, Any]:
        config = self.config
        total = int(config.rate * config.duration)
        tasks: set[asyncio.Task[None]] = set()
        wall0, usage0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic() + 0.05
        reporter = asyncio.create_task(self._report_intervals(started))
        index = 0
        while index < total:
            now = time.monotonic()
            due = started + index / config.rate
            if due > now:
                await asyncio.sleep(due - now)
                continue
            # Everything due by now is sent at once: the generator never skips a request.
            while index < total and started + index / config.rate <= now:
                due = started + index / config.rate
                self.lags_ms.append((now - due) * 1000.0)
                kind = self.maker.choose()
                request = self.maker.make(kind)
                self.tally.sent[kind] += 1
                task = asyncio.create_task(self._one(request, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                index += 1
        sending_s = time.monotonic() - started
        if tasks:
            await asyncio.wait(tasks, timeout=config.timeout_s + 5)
        unfinished = len(tasks)
        for task in tasks:
            task.cancel()
        reporter.cancel()
        self.pool.close()
        wall = time.monotonic() - wall0
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s = (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime)
        all_latencies = [v for values in self.tally.latencies.values() for v in values]
        errors = sum(self.tally.errors.values()) + unfinished
        return {
            "target_rate": config.rate,
            "duration_s": config.duration,
            "sent": sum(self.tally.sent.values()),
            "sent_rate": sum(self.tally.sent.values()) / max(sending_s, 1e-9),
            "completed_ok": len(all_latencies),
            "errors": errors,
            "shed": sum(self.tally.shed.values()),
            "unfinished": unfinished,
            "error_samples": self.tally.error_samples,
            "overall": latency_summary(all_latencies),
            "kinds": {
                name: {
                    "sent": self.tally.sent[name],
                    "errors": self.tally.errors[name],
                    "shed": self.tally.shed[name],
                    **latency_summary(self.tally.latencies[name]),
                }
                for name in self.tally.latencies
            },
            "generator": {
                "cpu_seconds": cpu_s,
                "cpu_cores": cpu_s / wall,
                "max_rss_mib": usage.ru_maxrss / 1024,
                "connections_opened": self.pool.opened,
                "stale_connection_retries": self.retries,
                "schedule_lag_ms": {
                    "p50": percentile(sorted(self.lags_ms), 50) if self.lags_ms else None,
                    "p99": percentile(sorted(self.lags_ms), 99) if self.lags_ms else None,
                    "max": max(self.lags_ms) if self.lags_ms else None,
                },
            },
        }

    async def smoke(self) -> list[str]:
        """One request of each kind, in turn: the problems found."""
        problems = []
        for kind in MIX:
            request = self.maker.make(kind.name)
            try:
                status, body = await asyncio.wait_for(self._send(request), self.config.timeout_s)
            except (TimeoutError, OSError) as error:
                problems.append(f"{kind.name}: {error!r}")
                continue
            finally:
                self.maker.done(request, refused=False)
            problem = request.check(status, body)
            if problem is not None:
                problems.append(f"{kind.name}: {problem}: {body[:300].decode(errors='replace')}")
        self.pool.close()
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.open_loop")
    parser.add_argument("--config", required=True, help="a JSON file of Config's fields")
    parser.add_argument("--smoke", action="store_true", help="one request of each kind")
    args = parser.parse_args(argv)
    with open(args.config) as config_file:
        config = Config(**json.load(config_file))
    api_key = os.environ.get("BENCH_API_KEY")
    if not api_key:
        print("BENCH_API_KEY is not set", file=sys.stderr)
        return 2
    with open(config.ids_file) as ids_file:
        ids = ids_file.read().split()
    generator = OpenLoop(config, api_key, ids)
    if args.smoke:
        problems = uvloop.run(generator.smoke())
        print(json.dumps({"smoke": problems}), flush=True)
        return 1 if problems else 0
    summary = uvloop.run(generator.run())
    print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
