"""What a promo code may be, and reading an upload of them (a JSON list or a file).

An upload is not all-or-nothing: valid codes are stored, invalid entries are counted and
the first MAX_INVALID_LISTED are reported with their position. A code the project
already has (in any pool), or one the upload repeats, is a duplicate and is not stored
again, so sending the same upload twice is harmless.
"""

import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from app.core.errors import FieldError, InvalidInput
from app.promotions.schemas import MAX_CODES_PER_UPLOAD, MAX_INVALID_LISTED

MAX_CODE_LENGTH = 64
_BOM = "\ufeff"
# A file may start with a header line naming its one column.
_HEADER = "code"
# Printable ASCII but space and '/': what nearly every code is, checked in one step.
_DOT_SEGMENTS = frozenset({".", ".."})
_PLAIN_CODE = re.compile(r"[\x21-\x2e\x30-\x7e]{1,64}")


def code_problem(code: str) -> str | None:
    """Why a (trimmed) value cannot be a code, or None."""
    if code in _DOT_SEGMENTS:
        # Clients resolve these in a URL path (POST /v1/promo-codes/{code}/redeem).
        return "Not usable in a URL path"
    if _PLAIN_CODE.fullmatch(code):
        return None
    if not code:
        return "Empty code"
    if len(code) > MAX_CODE_LENGTH:
        return f"Longer than {MAX_CODE_LENGTH} characters"
    for char in code:
        if char.isspace():
            return "Contains whitespace"
        # Cc control, Cf invisible formatting (zero-width space...), Cs, Co, Cn.
        if unicodedata.category(char).startswith("C"):
            return "Contains a control or invisible character"
        if char == "/":
            # The code travels in a URL path (POST /v1/promo-codes/{code}/redeem).
            return "Contains '/'"
    return None


@dataclass(frozen=True)
class InvalidEntry:
    message: str
    index: int | None = None
    line: int | None = None


@dataclass
class CodeBatch:
    """The codes of one upload, in upload order, each once."""

    codes: list[str] = field(default_factory=list)
    repeated: int = 0
    invalid_count: int = 0
    invalid: list[InvalidEntry] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    @property
    def entries(self) -> int:
        return len(self.codes) + self.repeated + self.invalid_count

    def add(self, raw: str, *, index: int | None = None, line: int | None = None) -> None:
        code = raw.strip()
        problem = code_problem(code)
        if problem is not None:
            self.refuse(problem, index=index, line=line)
        elif code in self._seen:
            self.repeated += 1
        else:
            self._seen.add(code)
            self.codes.append(code)

    def refuse(self, message: str, *, index: int | None = None, line: int | None = None) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_INVALID_LISTED:
            self.invalid.append(InvalidEntry(message, index=index, line=line))


def batch_of_list(codes: list[str]) -> CodeBatch:
    batch = CodeBatch()
    for index, raw in enumerate(codes):
        batch.add(raw, index=index)
    return batch


async def batch_of_file(chunks: AsyncIterator[bytes]) -> CodeBatch:
    """One code per line (UTF-8, LF or CRLF, blank lines skipped, no quoting), optionally
    under a header line `code`. Read as it arrives: the file is never held whole."""
    batch = CodeBatch()
    header_possible = True
    async for number, line in _lines(chunks):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            batch.refuse("Not UTF-8 text", line=number)
            header_possible = False
            continue
        if number == 1:
            text = text.removeprefix(_BOM)
        if not text.strip():
            continue
        if header_possible and text.strip().lower() == _HEADER:
            header_possible = False
            continue
        header_possible = False
        if batch.entries >= MAX_CODES_PER_UPLOAD:
            raise InvalidInput(
                f"A file holds at most {MAX_CODES_PER_UPLOAD} codes; split it.",
                errors=[
                    FieldError(pointer="/file", message=f"More than {MAX_CODES_PER_UPLOAD} codes")
                ],
            )
        batch.add(text, line=number)
    return batch


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """(line number from 1, its bytes without the line break)."""
    pending = b""
    number = 0
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            number += 1
            yield number, line.removesuffix(b"\r")
    if pending:
        yield number + 1, pending.removesuffix(b"\r")
