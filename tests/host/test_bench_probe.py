"""The bench's stats probe gets heap of its own (PROBE_HEAP_BYTES), so it must fit in it."""

from pathlib import Path

from host_tools.bench.client import MODERN
from host_tools.bench.measure import _served_with, workload
from host_tools.bench.targets import PROBE_HEAP_BYTES, BenchBoard
from host_tools.emulator.runner import EMULATOR_HEAP_BYTES
from host_tools.profiles import load_profile


def test_the_probe_fits_its_allowance(tmp_path: Path) -> None:
    profile = load_profile("esp32s3")
    with BenchBoard(profile, tmp_path) as board:
        stats = board.stats("c")
    assert board.vm_heap == profile.heap_bytes + EMULATOR_HEAP_BYTES + PROBE_HEAP_BYTES
    # What was live before the sim's import (the VM's own and the probe's code), and its server.
    assert 0 < stats.vm_and_probe + stats.stats_server <= PROBE_HEAP_BYTES, stats


def test_a_board_without_the_probe_gets_no_allowance(tmp_path: Path) -> None:
    profile = load_profile("esp32s3")
    board = BenchBoard(profile, tmp_path, probe=False)
    assert board.vm_heap == profile.heap_bytes + EMULATOR_HEAP_BYTES


def test_the_probe_answers_under_a_ballast_that_leaves_nothing(tmp_path: Path) -> None:
    # The bench's heap bisection can leave 0 B free: the probe must still take the next command
    # (its accept task once died of MemoryError there, and every later command timed out).
    with BenchBoard(load_profile("esp32"), tmp_path) as board:
        # A tool call: a tools/list page streams from the catalog file, and the spare request
        # buffer can serve it from next to nothing.
        request = workload(board.endpoint, MODERN).kinds["tools/call system_info"][0]
        # What the ballast leaves is in holes too small for it (under 96 B each).
        assert board.stats("b0").free < 8192
        assert board.stats("m").free < 8192
        assert board.stats("r").free > 16 * 1024
        assert not _served_with(board, request, 0)
        assert _served_with(board, request, 32 * 1024)


def test_the_largest_free_block_is_what_an_allocation_can_have(tmp_path: Path) -> None:
    # `f` bisects with real allocations: what it reports fits in the free heap (and a board just
    # booted has most of its free heap in one block); other commands do not look.
    with BenchBoard(load_profile("esp32"), tmp_path) as board:
        stats = board.stats("f")
        assert stats.free // 2 < stats.largest_free <= stats.free, stats
        assert board.stats("c").largest_free == 0
