# transport/buffers.py on the MicroPython VM: copy_out() sends head + the first n bytes of the
# shared stream + tail, exactly, in as few writes as a segment-sized buffer allows.
import io

from boardmcp.transport import buffers


def _copy(head, n, tail):
    src = io.BytesIO()
    data = bytes((i * 7 + 3) & 0xFF for i in range(n))
    src.write(data + b"STALE" * 100)  # the shared stream keeps bytes of longer responses past n
    writes = []
    buffers.copy_out(lambda b: writes.append(bytes(b)), head, src, n, tail)
    assert b"".join(writes) == head + data + tail, (len(head), n, len(tail))
    return writes


def test_copy_out_sends_exactly_head_body_and_tail():
    size = buffers.OUT_SIZE
    for head in (b"", b"H" * 30, b"H" * (size // 2 + 1)):  # the last is written on its own
        for n in (0, 1, 100, size - 31, size - 30, size, size + 1, 2 * size, 3 * size + 7):
            for tail in (b"", b"\r\n\r\n\r\n0\r\n\r\n"):
                _copy(head, n, tail)


def test_a_response_that_fits_is_one_write():
    assert len(_copy(b"H" * 30, 100, b"\r\n")) == 1
    assert len(_copy(b"H" * 30, buffers.OUT_SIZE - 30, b"")) == 1
    assert len(_copy(b"H" * 30, 2 * buffers.OUT_SIZE, b"")) == 3


def test_a_head_put_piece_by_piece():
    for n in (0, 7, 10, 99, 100, 1234, 65535, 10**9):
        pos = buffers.put_int(buffers.put(0, b"Content-Length: "), n)
        src = io.BytesIO(b"{}")
        writes = []
        buffers.send(lambda b, w=writes: w.append(bytes(b)), buffers.put(pos, b"\r\n\r\n"), src, 2, b"")
        assert writes == [b"Content-Length: %d\r\n\r\n{}" % n], (n, writes)
