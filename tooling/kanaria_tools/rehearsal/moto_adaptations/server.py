"""moto's server in this process, on loopback."""

from __future__ import annotations

import socket
import threading
from typing import Any

from kanaria_tools.rehearsal.moto_adaptations.catalogue import AdaptationError, check_moto_version


def start_server(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> Any:
    """Start moto's ThreadedMotoServer in this process on host:port; clear errors instead of a hang."""
    check_moto_version()
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    class _Server(ThreadedMotoServer):
        startup_error: BaseException | None = None

        def _server_entry(self) -> None:  # same as moto's, but a bind error is reported, not swallowed
            try:
                super()._server_entry()
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                self.startup_error = exc
                self._server_ready_event.set()

        def start(self) -> None:
            self._thread = threading.Thread(target=self._server_entry, daemon=True, name=f"moto-{port}")
            self._thread.start()
            if not self._server_ready_event.wait(timeout):
                raise AdaptationError(f"the local AWS emulator did not start on {host}:{port} within {timeout:.0f}s")
            if self.startup_error is not None:
                error = self.startup_error
                # werkzeug prints "Address already in use" and exits (SystemExit) instead of raising OSError.
                if (isinstance(error, OSError) and error.errno in {98, 48, 10048}) or (
                    isinstance(error, SystemExit) and not port_is_free(port, host)
                ):
                    raise AdaptationError(f"port {port} in use") from None
                raise AdaptationError(f"the local AWS emulator failed to start on {host}:{port}: {error}") from error

    server = _Server(ip_address=host, port=port, verbose=False)
    server.start()
    return server


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (and we may bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) != 0
