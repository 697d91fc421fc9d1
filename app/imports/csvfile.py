"""Reading an import file: records in order, from any point, with how far into the file.

The file is read as a stream (a batch of records at a time), so memory does not grow with
the file. Records are numbered from 1 after the header; a quoted cell may span lines.
"""

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

# The csv module's per-cell limit (128 KiB by default) is kept: a longer cell is no
# customer data, and it bounds what one record can cost.
_CODECS = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1", "cp1252": "cp1252"}


class FileProblem(Exception):
    """The file cannot be read as the CSV the options describe; str(error) says where."""


class _CountingReader(io.RawIOBase):
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


class CsvFile:
    def __init__(self, path: Path, *, encoding: str, delimiter: str) -> None:
        self._path = path
        self._encoding = encoding
        self._delimiter = delimiter
        self._raw: BinaryIO | None = None
        self._counter: _CountingReader | None = None
        self._reader: Iterator[list[str]] | None = None
        self.header: list[str] = []
        self.records_read = 0

    def __enter__(self) -> Self:
        try:
            return self._open()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _open(self) -> Self:
        self._raw = self._path.open("rb")
        self._counter = _CountingReader(self._raw)
        text = io.TextIOWrapper(
            io.BufferedReader(self._counter, 256 * 1024),
            encoding=_CODECS[self._encoding],
            newline="",
        )
        self._reader = csv.reader(text, delimiter=self._delimiter, strict=True)
        first = self._next()
        if first is None or not any(cell.strip() for cell in first):
            raise FileProblem("the file is empty: the first line must be the header")
        self.header = first
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._raw is not None:
            self._raw.close()

    @property
    def bytes_read(self) -> int:
        """Bytes taken from the file so far (read-ahead included: a progress figure)."""
        return self._counter.count if self._counter is not None else 0

    def skip(self, records: int) -> None:
        """Pass over records a previous run already committed."""
        while self.records_read < records and self._next() is not None:
            self.records_read += 1

    def batch(self, size: int) -> list[tuple[int, list[str]]]:
        """Up to `size` non-blank records as (number, cells); empty at the end."""
        found: list[tuple[int, list[str]]] = []
        while len(found) < size:
            cells = self._next()
            if cells is None:
                break
            self.records_read += 1
            if cells and any(cell.strip() for cell in cells):
                found.append((self.records_read, cells))
        return found

    def _next(self) -> list[str] | None:
        if self._reader is None:
            raise RuntimeError("CsvFile is read inside `with`")
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except UnicodeDecodeError as error:
            raise FileProblem(
                f"the file is not valid {self._encoding} (after record {self.records_read}): "
                f"{error.reason}; set options.encoding"
            ) from None
        except csv.Error as error:
            raise FileProblem(f"record {self.records_read + 1} cannot be read: {error}") from None
