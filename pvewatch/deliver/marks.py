"""Group commit of "delivered" marks: sends that finish while a batch is being written
join the next batch, and each waits until the batch holding its mark is on disk, so a
line stays busy until its row is marked (at-least-once, as with one write a row).

A batch the store refuses as a whole (a row that may no longer be marked, say) is
written again row by row, so each row gets the outcome it would have had alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

MarkMany = Callable[[Sequence[tuple[int, datetime]]], None]


class GroupMarks:
    """Batches `mark_delivered_many` calls: one store transaction per batch."""

    def __init__(self, mark_many: MarkMany) -> None:
        self._mark_many = mark_many
        self._waiting: list[tuple[tuple[int, datetime], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def mark(self, outbox_id: int, now: datetime) -> None:
        """Mark one row delivered at `now`; returns once it is written, or raises what the
        store raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(((outbox_id, now), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await asyncio.to_thread(self._mark_many, [mark for mark, _ in batch])
            except Exception as e:
                if len(batch) == 1:
                    _settle(batch[0][1], e)
                    continue
                for mark, done in batch:  # alone, each row gets its own outcome
                    try:
                        await asyncio.to_thread(self._mark_many, [mark])
                    except Exception as alone:
                        _settle(done, alone)
                    else:
                        _settle(done, None)
            else:
                for _, done in batch:
                    _settle(done, None)


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():  # the send waiting for it was cancelled
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
