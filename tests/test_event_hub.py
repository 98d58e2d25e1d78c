"""The event hub (events.py) under concurrent publishers: publish takes no lock unless a
stream waits, and the reader numbers events; no event may be lost, doubled or misnumbered."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict

from scheduler_service.api.events import EventHub

PUBLISHERS, EACH = 8, 500


def test_a_reader_sees_every_concurrent_event_once_in_order() -> None:
    hub = EventHub(keep=PUBLISHERS * EACH)  # room for all: this is about numbering, not eviction
    start = threading.Barrier(PUBLISHERS + 1)

    def publish(publisher: int) -> None:
        start.wait(5)
        for seq in range(EACH):
            hub.publish("run.succeeded", {"job_id": f"p{publisher}", "seq": seq})

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(PUBLISHERS)]
    for thread in threads:
        thread.start()
    seen: list[tuple[str, str, str]] = []
    last: str | None = None
    start.wait(5)
    deadline = time.monotonic() + 20
    while len(seen) < PUBLISHERS * EACH and time.monotonic() < deadline:
        events = hub.after(last, timeout=0.5)  # waits (the locked path) when caught up
        if events:
            seen.extend(events)
            last = events[-1][0]
    for thread in threads:
        thread.join(5)
    assert not any(thread.is_alive() for thread in threads)
    assert hub.after(last, timeout=0) == []  # nothing left unread

    numbers = [int(event_id.removeprefix(f"{hub.boot}-")) for event_id, _, _ in seen]
    assert numbers == list(range(1, PUBLISHERS * EACH + 1))  # once each, increasing, no gap
    sequences: dict[str, list[int]] = defaultdict(list)
    for _, kind, data in seen:
        assert kind == "run.succeeded"
        event = json.loads(data)
        sequences[event["job_id"]].append(event["seq"])
    # every publisher's events, each once, in the order it published them
    assert dict(sequences) == {f"p{n}": list(range(EACH)) for n in range(PUBLISHERS)}
