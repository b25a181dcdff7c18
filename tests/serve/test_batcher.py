"""The asyncio dynamic batcher: batch formation, max wait, errors, cancellation, a free event loop."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from encoderlab.serve.batcher import DynamicBatcher


@pytest.mark.timeout(60)
def test_concurrent_items_share_batches_up_to_the_max():
    seen = []

    def process(items):
        seen.append(list(items))
        return [x * 10 for x in items]

    async def main():
        b = DynamicBatcher(process, max_batch_size=4, max_wait_ms=500)   # generous: a loaded machine is slow
        results = await asyncio.gather(*(b.submit(i) for i in range(10)))
        stats = b.stats()
        await b.aclose()
        return results, stats

    results, stats = asyncio.run(main())
    assert results == [i * 10 for i in range(10)]
    assert [len(s) for s in seen] == [4, 4, 2]
    assert sorted(x for s in seen for x in s) == list(range(10))
    assert stats["batches"] == 3 and stats["items"] == 10 and stats["largest_batch"] == 4
    assert stats["batch_sizes"] == {"2": 1, "4": 2}


@pytest.mark.timeout(60)
def test_a_lone_item_waits_for_company_then_goes_alone():
    """It waits max_wait for other items (a lower bound: load cannot make it shorter), then runs alone rather
    than waiting for a full batch (which would never come: wait_for's generous deadline catches that)."""
    sizes = []

    def process(items):
        sizes.append(len(items))
        return items

    async def main():
        b = DynamicBatcher(process, max_batch_size=64, max_wait_ms=200)
        t0 = time.monotonic()
        assert await asyncio.wait_for(b.submit("x"), 30) == "x"
        took = time.monotonic() - t0
        await b.aclose()
        return took

    took = asyncio.run(main())
    assert took >= 0.195 and sizes == [1]


@pytest.mark.timeout(60)
def test_submit_many_keeps_order_across_batches():
    async def main():
        b = DynamicBatcher(lambda items: [-x for x in items], max_batch_size=3, max_wait_ms=1)
        out = await asyncio.gather(b.submit_many(list(range(7))), b.submit_many([100, 101]))
        await b.aclose()
        return out

    assert asyncio.run(main()) == [[-x for x in range(7)], [-100, -101]]


@pytest.mark.timeout(60)
def test_errors_reach_the_requests_of_the_failing_batch_only():
    def process(items):
        if "bad" in items:
            raise RuntimeError("model exploded")
        return items

    async def main():
        b = DynamicBatcher(process, max_batch_size=8, max_wait_ms=1)
        with pytest.raises(RuntimeError, match="model exploded"):
            await b.submit("bad")
        ok = await b.submit("good")                      # the collector survives
        await b.aclose()
        return ok

    assert asyncio.run(main()) == "good"


@pytest.mark.timeout(120)
def test_event_loop_keeps_running_during_inference_and_cancelled_items_are_skipped():
    ran = []
    release = threading.Event()

    def process(items):
        ran.extend(items)
        release.wait(60)                                   # released by the test, whatever the load
        return items

    async def main():
        b = DynamicBatcher(process, max_batch_size=1, max_wait_ms=0)
        first = asyncio.ensure_future(b.submit("first"))
        ticks = 0
        while not ran:                                    # the loop ticks while the model thread works
            await asyncio.sleep(0.005)
        for _ in range(10):
            await asyncio.sleep(0.005)
            ticks += 1
        with pytest.raises(asyncio.TimeoutError):          # queued behind "first", then abandoned
            await asyncio.wait_for(b.submit("abandoned"), 0.05)
        release.set()
        assert await first == "first"
        assert await b.submit("after") == "after"
        await b.aclose()
        return ticks

    assert asyncio.run(main()) == 10
    assert ran == ["first", "after"]                      # the abandoned item never reached the model


@pytest.mark.timeout(60)
def test_bad_settings():
    with pytest.raises(ValueError, match="max_batch_size must be at least 1"):
        DynamicBatcher(lambda x: x, max_batch_size=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        DynamicBatcher(lambda x: x, max_wait_ms=-1)
