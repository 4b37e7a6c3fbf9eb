# Shared by the fw_* modules (MicroPython, on the VM): an HTTPServer started on a free loopback port.
from boardmcp.auth import Guard
from boardmcp.transport.http import HTTPServer


async def listen(server, first_port):
    """An HTTPServer for `server`, without a token, serving on the first free port of the 99 from
    `first_port` (each test module takes its own range)."""
    for port in range(first_port, first_port + 99):
        http = HTTPServer(server, Guard(None), "127.0.0.1", port)
        try:
            await http.start()
            return http
        except OSError:
            pass
    raise OSError("no free port")
