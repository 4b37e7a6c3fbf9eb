"""The soak's verdict logic: when the heap is read, and what counts as flat."""

import threading
import time

from host_tools.bench.soak import FLAT_SLACK, SoakOptions, SoakResult, Window, _Counter


def _result(lives: list[int]) -> SoakResult:
    return SoakResult(SoakOptions(), windows=[Window(i, live, 0, 0, 0.0) for i, live in enumerate(lives)])


def test_a_stray_reading_either_way_is_not_a_leak() -> None:
    # Measured on the emulated esp32s3: a stale pointer keeps or frees up to ~12 KB for one reading.
    lives = [182_048] * 20
    lives[1], lives[18] = 170_368, 194_000
    assert _result(lives).flat


def test_a_steady_rise_is_a_leak() -> None:
    result = _result([180_000 + 200 * i for i in range(20)])
    assert result.growth > FLAT_SLACK and not result.flat


def test_no_windows_is_not_flat() -> None:
    assert not _result([]).flat


def test_the_heap_is_sampled_with_no_request_in_flight() -> None:
    in_flight = 0
    seen: list[int] = []
    lock = threading.Lock()
    counter = _Counter(60, 10, lambda _done: seen.append(in_flight))

    def client() -> None:
        nonlocal in_flight
        while counter.take():
            with lock:
                in_flight += 1
            time.sleep(0.001)  # the request
            with lock:
                in_flight -= 1
        counter.leave()

    threads = [threading.Thread(target=client, name=f"c{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sum(counter.by_client.values()) == 60
    assert seen == [0] * 6


def test_a_client_that_stops_does_not_hold_the_sample_up() -> None:
    counter = _Counter(4, 2, lambda _done: None)
    stopped = threading.Thread(target=lambda: (counter.take(), counter.leave()), name="stops")
    stopped.start()
    stopped.join(10)
    for _ in range(3):
        assert counter.take()
    assert not counter.take()
