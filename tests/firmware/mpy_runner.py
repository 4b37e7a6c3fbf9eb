# Runs on the MicroPython VM: `micropython mpy_runner.py fw_module` runs every test_* function
# (plain or async) of that module and prints one JSON line per test, which tests/firmware/test_on_vm.py reads.
import asyncio
import gc
import io
import json
import sys


def main(name):
    mod = __import__(name)
    for attr in sorted(dir(mod)):
        if not attr.startswith("test_"):
            continue
        gc.collect()  # each test starts from a collected heap, whatever the last one left
        try:
            ran = getattr(mod, attr)()
            if ran is not None and hasattr(ran, "send"):  # an async test
                asyncio.run(ran)
            print(json.dumps({"test": attr, "ok": True}))
        except Exception as e:
            out = io.StringIO()
            sys.print_exception(e, out)
            print(json.dumps({"test": attr, "ok": False, "error": out.getvalue()}))


main(sys.argv[1])
