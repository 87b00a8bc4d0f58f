"""A Beam job server and a pool of SDK worker processes on this machine: the portable path that
cluster runners take (a job service translates the pipeline, workers in their own processes run
it), without Flink or Spark. The tests and ``benchmarks/runners.py`` run the pipeline through it;
``deploy/README.md`` gives the same as commands.

The pool starts each worker with the ``python`` on PATH (this interpreter's folder is put first).
A worker that cannot start leaves the job waiting without an error: callers need a timeout.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from typing import Iterator

JOB_SERVICE = "apache_beam.runners.portability.local_job_service_main"
WORKER_POOL = "apache_beam.runners.worker.worker_pool_main"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port} after {seconds:.0f} s")
        time.sleep(0.2)


@contextlib.contextmanager
def job_server(workers: int = 2, start_seconds: float = 60) -> Iterator[list[str]]:
    """Start a job server and a worker pool; yields the Beam options that run a pipeline on them
    with ``workers`` workers; stops both on exit."""
    job_port, pool_port = free_port(), free_port()
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}
    services = ((JOB_SERVICE, "--port", job_port), (WORKER_POOL, "--service_port", pool_port))
    servers = [subprocess.Popen([sys.executable, "-m", module, flag, str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for module, flag, port in services]
    try:
        for port in (job_port, pool_port):
            _wait_for(port, start_seconds)
        yield ["--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}", "--environment_type=EXTERNAL",
               f"--environment_config=localhost:{pool_port}", f"--sdk_worker_parallelism={workers}"]
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)
