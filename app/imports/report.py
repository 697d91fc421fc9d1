"""The error report as CSV, with every cell made safe to open in a spreadsheet.

A cell starting with =, +, -, @, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (CSV injection, OWASP): the report carries customers'
original rows, so such cells are prefixed with a single quote, which spreadsheets show
as text. The report is for reading, not for importing again.
"""

import csv
import io
from collections.abc import AsyncIterator

HEADER = ("row", "column", "message", "original_row")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


async def report_csv(lines: AsyncIterator[tuple[int, str, str, str]]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    async for row_number, column, message, original in lines:
        writer.writerow(
            (row_number, neutralised(column), neutralised(message), neutralised(original))
        )
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
