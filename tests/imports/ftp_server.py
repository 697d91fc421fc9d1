"""A real FTP server (pyftpdlib) on 127.0.0.1 and a free port, in a thread of the test."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

PASSWORD = "s3cret-Pa55"
CONTENT = "email,first_name\nftp1@example.com,One\nftp2@example.com,Two\n"


@dataclass(frozen=True)
class Ftp:
    port: int
    root: Path

    def source(self, path: str, **changes: Any) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "path": path,
            "username": "cdp",
            "password": PASSWORD,
        } | changes


@contextmanager
def serving(root: Path, handler: type[FTPHandler] = FTPHandler) -> Iterator[Ftp]:
    """Serve `root` (with exports/ and done/ folders) to user cdp until the block ends."""
    (root / "exports").mkdir(parents=True)
    (root / "done").mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user("cdp", PASSWORD, str(root), perm="elradfmw")
    with_users = type("Handler", (handler,), {"authorizer": authorizer})
    server = FTPServer(("127.0.0.1", 0), with_users)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.1}, daemon=True)
    thread.start()
    try:
        yield Ftp(port=server.address[1], root=root)
    finally:
        server.close_all()
        thread.join(timeout=5)
