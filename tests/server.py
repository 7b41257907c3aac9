"""A real ``mlflow server`` for the tests: SQLite backend, local artifact root, a free port on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 120


class MlflowServer:
    """An ``mlflow server`` subprocess that can be stopped and started again on the same port and store.

    Parameters
    ----------
    root : Path
        Folder holding the SQLite database (``mlflow.db``), the artifacts (``artifacts/``) and the log.
    workers : int
        Worker processes of the server; one (the default) avoids uvicorn's supervisor, which kills
        workers that import slowly on a loaded machine.
    """

    health_path = "/health"

    def __init__(self, root: Path, workers: int = 1):
        self.root, self.workers = root, workers
        self.environment: dict[str, str] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        """Start the server and wait until it answers its health check; raise with its log when it does not."""
        command = self.command()
        environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
        environment |= self.environment
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=self.root, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{' '.join(command[2:4])} did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        return self

    def command(self) -> list[str]:
        """The command line of the server."""
        return [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination",
            (self.root / "artifacts").as_uri(),
        ]

    def healthy(self) -> bool:
        """True when the server answers ``GET <health_path>`` with 200."""
        try:
            with urllib.request.urlopen(f"{self.url}{self.health_path}", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Stop the server and its workers (the whole process group) and wait until the port is closed."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None
        while self.healthy():
            time.sleep(0.2)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ModelServer(MlflowServer):
    """``mlflow models serve -m <model_uri> --env-manager local`` of a model in the store ``tracking_uri``.

    Health check ``GET /ping``; predictions ``POST /invocations``.
    """

    health_path = "/ping"

    def __init__(self, root: Path, model_uri: str, tracking_uri: str):
        super().__init__(root)
        self.model_uri, self.log_path = model_uri, root / "model_server.log"
        self.environment = {"MLFLOW_TRACKING_URI": tracking_uri}

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            self.model_uri,
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
