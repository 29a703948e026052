"""Counting the rows of a PostgreSQL binary COPY stream as its bytes go by.

The format (PostgreSQL docs, "COPY ... Binary Format"): an 11-byte signature, a 32-bit
flags field, a 32-bit header-extension length and that many bytes; then per row a 16-bit
field count and per field a 32-bit length (-1 for NULL) and the bytes; a field count of -1
ends the stream. Backup and restore use the count for their progress bars and as a second
witness of the row count (besides COPY's own), without holding more than one row.
"""

from __future__ import annotations

import struct

from components.errors import Mem0InfraError

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = len(SIGNATURE) + 8  # signature, flags, extension length
_INT16, _INT32 = struct.Struct(">h"), struct.Struct(">i")


class CopyFormatError(Mem0InfraError):
    """The bytes are not a binary COPY stream (a restore refuses the member instead)."""


class RowCounter:
    """Feed it the stream in blocks of any size; `rows` is the number of complete rows so
    far and `finished` whether the end marker has been seen."""

    def __init__(self) -> None:
        self.rows = 0
        self.finished = False
        self._pending = bytearray()
        self._header_done = False

    def feed(self, block: bytes | bytearray | memoryview) -> int:
        """Take the next bytes; returns how many rows they completed."""
        if self.finished and len(block):
            raise CopyFormatError("bytes after the end of the COPY stream")
        self._pending += block
        before = self.rows
        consumed = self._parse()
        del self._pending[:consumed]
        return self.rows - before

    def _parse(self) -> int:
        buf, end = self._pending, len(self._pending)
        pos = 0
        if not self._header_done:
            if end < HEADER:
                return 0
            if bytes(buf[:len(SIGNATURE)]) != SIGNATURE:
                raise CopyFormatError("no binary COPY signature")
            extension = _INT32.unpack_from(buf, HEADER - 4)[0]
            if extension < 0:
                raise CopyFormatError("a negative header extension length")
            if end < HEADER + extension:
                return 0
            pos = HEADER + extension
            self._header_done = True
        while end - pos >= 2:
            fields = _INT16.unpack_from(buf, pos)[0]
            if fields == -1:
                self.finished = True
                return pos + 2
            if fields < 0:
                raise CopyFormatError(f"a row with {fields} fields")
            row_end = pos + 2
            for _ in range(fields):
                if end - row_end < 4:
                    return pos
                length = _INT32.unpack_from(buf, row_end)[0]
                row_end += 4 + max(length, 0)
                if row_end > end:
                    return pos
            pos = row_end
            self.rows += 1
        return pos
