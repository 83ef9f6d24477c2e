"""Run the Spotfire Server emulator as a separate process for the full-stack tests.

``python tests/fullstack/emulator_runner.py READY_FILE`` starts the real emulator app
(:class:`~airflow_provider_spotfire.emulator.server.EmulatorServer`, seeded state, free port) and writes
``{"url": ..., "pid": ...}`` to READY_FILE once it serves. It stops on SIGTERM/SIGINT.

The only addition to the emulator is one test-only inspection route,
``GET /_emulator/fullstack/issued-tokens``: the values of every access and refresh token the emulator
issued. The full-stack tests use it to prove that no token reached a task log or an XCom value. (The
emulator's own ``/_emulator/state`` only counts tokens; it never shows their values.)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def main(ready_file: str) -> int:
    from fastapi.responses import JSONResponse

    from airflow_provider_spotfire.emulator.server import EmulatorServer

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = EmulatorServer(port=0)

    async def issued_tokens() -> JSONResponse:
        state = server.state
        with state.lock:
            values = [
                {"kind": t.kind, "client_id": t.client_id, "value": t.value} for t in state.tokens.values()
            ]
        return JSONResponse(values)

    server.app.add_api_route("/_emulator/fullstack/issued-tokens", issued_tokens, methods=["GET"])
    server.start()
    try:
        target = Path(ready_file)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": server.url, "pid": os.getpid()}))
        tmp.replace(target)
        print(f"Spotfire Server emulator (full-stack test runner) listening on {server.url}", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
    print("Spotfire Server emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
