"""Inflating a gzip or deflate answer with isal (ISA-L) instead of httpx's zlib: the
simulator's 10,000-guest /cluster/resources (0.64 MB gzipped, 3.4 MB JSON) in ~2.3 ms of
CPU instead of ~6.3 ms (bench/RESULTS.md). isal lives here only.

The caller gives each step a budget (`max_length`), so however well a body compresses,
a step never makes more bytes than that: a gzip bomb is cut one byte past the limit.
Anything that is not exactly one whole compressed stream is an `InflateError`: corrupt
data, a stream cut short, or bytes after its end (a second gzip member, junk).
"""

from __future__ import annotations

from isal import isal_zlib

# The encodings the client asks for (httpx's Accept-Encoding: gzip, deflate) and their
# window bits: gzip's header and trailer, deflate in zlib's wrapper.
WBITS = {"gzip": 16 + isal_zlib.MAX_WBITS, "deflate": isal_zlib.MAX_WBITS}
# The stub says `error: Exception`; it is the exception class IsalError.
_ISAL_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]


class InflateError(Exception):
    """The body is not one whole stream of its Content-Encoding."""


class Inflater:
    """Inflates one body, chunk by chunk. `for_encoding` gives None for an encoding that
    is not ours to inflate (none, identity, several, unknown): httpx decodes it."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._stream = isal_zlib.decompressobj(WBITS[encoding])
        self._started = False

    @classmethod
    def for_encoding(cls, content_encoding: str) -> Inflater | None:
        encoding = content_encoding.strip().lower()
        return cls(encoding) if encoding in WBITS else None

    def inflate(self, data: bytes, max_length: int) -> bytes:
        """The bytes `data` inflates to, at most `max_length` (> 0; zlib's 0 is "no
        limit"). Fewer than `max_length` means all of `data` was used and nothing is held
        back; `max_length` bytes means there may be more, left behind unread."""
        if max_length < 1:
            raise ValueError(f"max_length must be positive, not {max_length}")
        if not data:
            return b""
        first, self._started = not self._started, True
        try:
            inflated = self._stream.decompress(data, max_length)
        except _ISAL_ERROR as exc:
            if not (first and self._encoding == "deflate"):
                raise InflateError(str(exc)) from None
            # Some servers send deflate without zlib's wrapper; httpx takes both, so do we.
            self._stream = isal_zlib.decompressobj(-isal_zlib.MAX_WBITS)
            return self.inflate(data, max_length)
        if self._stream.unused_data:
            raise InflateError("more bytes after the end of the compressed stream")
        return inflated

    def finish(self) -> None:
        """At the end of the body: raises if the stream was cut short. An empty body is
        empty, whatever its header says (as httpx has it)."""
        if self._started and not self._stream.eof:
            raise InflateError("the compressed stream is cut short")
