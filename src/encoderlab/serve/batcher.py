"""A small asyncio dynamic batcher: concurrent requests share one model forward.

Requests submit *items* (QA features, texts to classify); a collector task takes the first
waiting item, then keeps collecting until ``max_batch_size`` items are in hand or ``max_wait_ms``
has passed since that first item, and hands the batch to ``process(items) -> results`` in a
dedicated worker thread (``loop.run_in_executor``), so the event loop never blocks on inference.
Batches run one at a time (one worker thread: the model uses the intra-op threads itself); while
one runs, the next one gathers. Items whose request was cancelled (timeout, client gone) are
dropped before they reach the model. ``stats()`` reports how many batches of which sizes ran.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence


class BatcherClosed(RuntimeError):
    pass


class DynamicBatcher:
    def __init__(self, process: Callable[[list[Any]], Sequence[Any]], *, max_batch_size: int = 32,
                 max_wait_ms: float = 5.0, name: str = "model"):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, not {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, not {max_wait_ms}")
        self.process = process
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batcher-{name}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._sizes: Counter[int] = Counter()
        self._busy_s = 0.0

    # ---- lifecycle -------------------------------------------------------------------------
    def _ensure_started(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._closed:
            raise BatcherClosed(f"the {self.name} batcher is shut down")
        if self._loop is not loop or self._task is None or self._task.done():
            # first use, or a new event loop (e.g. a test client per test): start a collector here
            self._loop = loop
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._collect(self._queue), name=f"batcher-{self.name}")
        return self._queue

    async def aclose(self) -> None:
        """Stop collecting (pending requests fail) and release the worker thread."""
        self._closed = True
        if self._task is not None and self._loop is asyncio.get_running_loop():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- submitting --------------------------------------------------------------------------
    async def submit_many(self, items: Sequence[Any]) -> list[Any]:
        """Queue `items` (they may land in different batches); their results in order."""
        queue = self._ensure_started()
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        for item, fut in zip(items, futures):
            queue.put_nowait((item, fut))
        try:
            return list(await asyncio.gather(*futures))
        except BaseException:
            for f in futures:   # timeout / cancellation: drop what has not run yet
                f.cancel()
            raise

    async def submit(self, item: Any) -> Any:
        return (await self.submit_many([item]))[0]

    # ---- the collector ---------------------------------------------------------------------------
    async def _collect(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await queue.get()
            batch = [first]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch_size:
                try:
                    batch.append(queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            live = [(item, fut) for item, fut in batch if not fut.done()]
            if not live:
                continue
            t0 = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.process, [item for item, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"batch of {len(live)} items gave {len(results)} results")
            except asyncio.CancelledError:
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(BatcherClosed(f"the {self.name} batcher is shut down"))
                raise
            except Exception as exc:  # noqa: BLE001 - the requests of this batch get the error
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            finally:
                with self._lock:
                    self._sizes[len(live)] += 1
                    self._busy_s += time.perf_counter() - t0
            for (_, fut), res in zip(live, results):
                if not fut.done():
                    fut.set_result(res)

    # ---- statistics ------------------------------------------------------------------------------
    def stats(self) -> dict:
        with self._lock:
            sizes = dict(self._sizes)
            busy = self._busy_s
        batches = sum(sizes.values())
        items = sum(k * v for k, v in sizes.items())
        return {"max_batch_size": self.max_batch_size, "max_wait_ms": self.max_wait_s * 1000.0,
                "batches": batches, "items": items, "mean_batch_size": round(items / batches, 3) if batches else 0.0,
                "largest_batch": max(sizes, default=0), "batch_sizes": {str(k): sizes[k] for k in sorted(sizes)},
                "busy_seconds": round(busy, 3)}
