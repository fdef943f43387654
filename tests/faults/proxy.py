"""A small TCP proxy the fault tests put between leadflow and a dependency, and cut.

`delay_s` slows every chunk it forwards, as a distant or congested link would. `cut()`
resets every open connection and stops listening, so until `restore()` a new
connection is refused: to the client it is a server that went away mid-query and is down.
Plain threads and sockets; nothing of leadflow is imported.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class CutProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` until cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = threading.Event()
        self._closed = threading.Event()
        self.connections = 0  # connections forwarded
        self.dropped = 0  # open connections reset by a cut
        self.delay_s = 0.0  # added before each chunk is forwarded, either way: a slow link
        self._thread = threading.Thread(target=self._accept, name="cut-proxy", daemon=True)

    def __enter__(self) -> CutProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def is_cut(self) -> bool:
        """True between `cut` and `restore`."""
        return self._cut.is_set()

    def cut(self) -> None:
        """Reset every connection now and refuse new ones until `restore`."""
        with self._lock:
            self._cut.set()
            listener, self._listener = self._listener, None
            doomed, self._open = self._open, set()
            self.dropped += len(doomed) // 2
        if listener is not None:
            listener.close()
        for sock in doomed:
            _kill(sock)

    def restore(self) -> None:
        """Listen on the same port again and let connections through."""
        with self._lock:
            if self._listener is None and not self._closed.is_set():
                self._listener = self._listen(self.port)
            self._cut.clear()

    def close(self) -> None:
        """Stop listening and drop everything."""
        self._closed.set()
        self.cut()
        self._thread.join(2)

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        listener.settimeout(0.1)
        return listener

    def _accept(self) -> None:
        while not self._closed.is_set():
            listener = self._listener
            if listener is None:
                self._closed.wait(0.05)
                continue
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                continue  # closed by a cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _kill(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._cut.is_set():
                    _kill(client)
                    _kill(upstream)
                    continue
                self._open.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.delay_s:
                    time.sleep(self.delay_s)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _kill(source)
            _kill(sink)


def _kill(sock: socket.socket) -> None:
    """Close at once, with a reset rather than a polite FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
