"""Fetching import files from FTP/FTPS servers (aioftp), with errors a person can act on.

Credentials never reach a log line or an error message: aioftp censors PASS in its own
debug logs, and every error below names the host, user and path, never the password.

The host is named by whoever holds an imports key, so every connection is an SSRF risk.
Before connecting, the name is resolved and refused if any address it has is not public
(loopback, private, link-local such as cloud metadata at 169.254.169.254, shared,
multicast, reserved), unless private addresses were allowed for this import. The
control connection then goes to the address that was checked, not to the name again, so
a second DNS answer cannot swap in another host; data connections go to that same
address whatever the server's PASV reply names (an FTP server cannot point them
elsewhere). With TLS, connections go by name, because the certificate names the host;
the handshake then proves every connection reached that host.
"""

import asyncio
import fnmatch
import ipaddress
import os
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import aioftp

from app.imports.schemas import FtpSource

CONNECT_TIMEOUT_SECONDS = 20.0
SOCKET_TIMEOUT_SECONDS = 60.0
_CHUNK_BYTES = 256 * 1024
PASSWORD_ENV_PREFIX = "CDP_FTP_PASSWORD_"  # noqa: S105 (a variable name prefix, not a secret)


class FtpProblem(Exception):
    """The server could not give us the file; str(error) says why, without secrets."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    name: str
    # Size and modification time as listed: a file uploaded again is a new file.
    fingerprint: str


def password_for(source: FtpSource, stored_secret: str | None) -> str:
    """The password to log in with: the stored one, or the server's secret named by ref."""
    if source.password_ref is not None:
        value = os.environ.get(PASSWORD_ENV_PREFIX + source.password_ref)
        if value is None:
            raise FtpProblem(
                f"password_ref {source.password_ref!r} names no secret on the server "
                f"(environment variable {PASSWORD_ENV_PREFIX}{source.password_ref})"
            )
        return value
    return stored_secret or ""


def has_secret(ref: str) -> bool:
    return PASSWORD_ENV_PREFIX + ref in os.environ


def is_public_address(address: str) -> bool:
    """Whether an address is on the public internet (an IPv4-mapped IPv6 address counts
    as the IPv4 address it carries)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _addresses_to_reach(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The host's addresses, in the resolver's order, once every one of them is allowed."""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FtpProblem(f"cannot resolve {host}: {error}") from None
    addresses = [str(info[4][0]) for info in found]
    if not addresses:
        raise FtpProblem(f"cannot resolve {host}: no address")
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise FtpProblem(
                    f"{host} resolves to {address}, which is not a public address; the "
                    "service reaches such hosts only when they are named in "
                    "CDP_IMPORT_FTP_ALLOWED_HOSTS or CDP_IMPORT_FTP_ALLOW_PRIVATE_ADDRESSES "
                    "is true"
                )
    return addresses


async def _connected(addresses: list[str], port: int) -> aioftp.Client:
    """A client connected to the first of the addresses that answers (a dual-stack name
    may list one the server does not listen on); the last failure if none does."""
    failure: OSError | TimeoutError = OSError("no address to connect to")
    for address in addresses:
        client = aioftp.Client(
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            connection_timeout=CONNECT_TIMEOUT_SECONDS,
            trust_server_pasv_ipv4_address=False,
        )
        try:
            await client.connect(address, port)
        except (OSError, TimeoutError) as error:
            client.close()
            failure = error
            continue
        return client
    raise failure


async def download(
    source: FtpSource,
    password: str,
    destination: Path,
    *,
    max_bytes: int,
    allow_private: bool,
    path: str | None = None,
) -> int:
    """Stream the file at `path` (default: the source's) to `destination`; its size in bytes."""
    remote = path or source.path
    written = 0
    async with _session(source, password, allow_private=allow_private) as client:
        try:
            # Asked first: a refused RETR leaves aioftp's data connection open.
            if not await client.exists(remote) or not await client.is_file(remote):
                raise FtpProblem(f"cannot read {remote} on {source.host}: there is no such file")
            async with client.download_stream(remote) as stream:
                with destination.open("wb") as out:
                    async for chunk in stream.iter_by_block(_CHUNK_BYTES):
                        written += len(chunk)
                        if written > max_bytes:
                            raise FtpProblem(
                                f"{remote} on {source.host} is larger than the import limit "
                                f"of {max_bytes} bytes"
                            )
                        await asyncio.to_thread(out.write, chunk)
        except aioftp.StatusCodeError as error:
            raise FtpProblem(f"cannot read {remote} on {source.host}: {_reply(error)}") from None
    return written


async def list_new(
    source: FtpSource, password: str, pattern: str, *, allow_private: bool
) -> list[RemoteFile]:
    """Files (not directories) in the source's directory whose name matches `pattern`."""
    found: list[RemoteFile] = []
    async with _session(source, password, allow_private=allow_private) as client:
        try:
            for path, info in await client.list(source.path):
                if info.get("type") != "file" or not fnmatch.fnmatch(path.name, pattern):
                    continue
                fingerprint = f"{info.get('size', '')}:{info.get('modify', '')}"
                found.append(RemoteFile(str(path), path.name, fingerprint))
        except aioftp.StatusCodeError as error:
            raise FtpProblem(
                f"cannot list {source.path} on {source.host}: {_reply(error)}"
            ) from None
    return sorted(found, key=lambda f: f.name)


async def move(
    source: FtpSource, password: str, remote: str, directory: str, *, allow_private: bool
) -> None:
    target = str(PurePosixPath(directory) / PurePosixPath(remote).name)
    async with _session(source, password, allow_private=allow_private) as client:
        try:
            await client.rename(remote, target)
        except aioftp.StatusCodeError as error:
            raise FtpProblem(f"cannot move {remote} to {target}: {_reply(error)}") from None


@asynccontextmanager
async def _session(
    source: FtpSource, password: str, *, allow_private: bool
) -> AsyncIterator[aioftp.Client]:
    """A logged-in client, closed at the end; failures to get one become FtpProblem."""
    addresses = await _addresses_to_reach(source.host, source.port, allow_private=allow_private)
    where = f"{source.host}:{source.port}"
    try:
        client = await _connected(addresses, source.port)
    except (OSError, TimeoutError) as error:
        raise FtpProblem(f"cannot connect to {where}: {error}") from None
    try:
        if source.tls:
            # The certificate names the host, not its address: TLS checks the name on
            # the control connection and on every data connection, which go by name.
            client.server_host = source.host
            await client.upgrade_to_tls(ssl.create_default_context())
        await client.login(source.username, password)
    except aioftp.StatusCodeError as error:
        client.close()
        if any(str(code) == "530" for code in _codes(error)):
            raise FtpProblem(
                f"{where} refused the login of user {source.username!r}: wrong user name "
                "or password"
            ) from None
        raise FtpProblem(f"{where} refused the session: {_reply(error)}") from None
    except (OSError, TimeoutError, ssl.SSLError) as error:
        client.close()
        raise FtpProblem(f"cannot connect to {where}: {error}") from None
    try:
        yield client
    finally:
        try:
            await client.quit()
        except (aioftp.AIOFTPException, OSError, TimeoutError):
            pass
        finally:
            client.close()


def _codes(error: aioftp.StatusCodeError) -> tuple[object, ...]:
    received = error.received_codes
    return received if isinstance(received, tuple) else (received,)


def _reply(error: aioftp.StatusCodeError) -> str:
    lines = " ".join(str(line).strip() for line in error.info)[:300]
    codes = ", ".join(str(c) for c in _codes(error))
    return f"the server answered {codes} {lines}".strip()
