"""The console command, many times over, at the cost of one start.

Starting `python -m unlearnbench.cli` costs ~5 s, nearly all of it importing torch and Hydra.
A server process imports `unlearnbench.cli` once and forks one child per command: the child
is a fresh process that runs the real entry point (`cli.main()`) with its own argv, working
directory, environment, stdout and stderr files and exit status, exactly as the console
script would, minus the imports. tests/test_bad_input.py checks a few commands both ways.

Run as a script (`python tests/forked_cli.py REPO`) it is the server for the checkout REPO,
so the same corpus can be run against another version of the code
(scripts/bad_input_report.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    cpu_s: float = 0.0


class ForkedCli:
    """A client of the fork server for the checkout ``repo``."""

    def __init__(self, repo: Path, python: str = sys.executable) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen([python, str(Path(__file__).resolve()), str(repo)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        ready = self.proc.stdout.readline()  # type: ignore[union-attr]
        if ready.strip() != "ready":
            raise RuntimeError(f"fork server for {repo} did not start: {ready!r}")

    def run(self, args: list[str], cwd: Path, out_dir: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> Result:
        """Run `unlearnbench *args` in ``cwd``; its stdout/stderr go to files in ``out_dir``
        (keep that outside any folder the command is checked not to touch)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        stdout, stderr = out_dir / "stdout.txt", out_dir / "stderr.txt"
        request = {"args": args, "cwd": str(cwd), "stdout": str(stdout), "stderr": str(stderr),
                   "env": env or {}, "timeout": timeout}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        return Result(reply["returncode"], stdout.read_text(errors="replace"),
                      stderr.read_text(errors="replace"), reply["cpu_s"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _child(request: dict, main) -> None:
    """In the forked child: become the console command, then exit with its status."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        for fd, name in ((1, "stdout"), (2, "stderr")):
            target = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the child's whole life
        sys.argv = ["unlearnbench", *request["args"]]
        try:
            main()
            code = 0
        except SystemExit as exc:  # what the interpreter does with it
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            import traceback
            traceback.print_exc()
            code = 130
        except BaseException:  # an uncaught exception: a traceback, status 1
            import traceback
            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _wait(pid: int, timeout: float) -> tuple[int, float]:
    """The child's exit status (-9 when it ran past ``timeout``) and its CPU seconds."""
    deadline = time.monotonic() + timeout
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, _, usage = os.wait4(pid, 0)
            return -signal.SIGKILL, usage.ru_utime + usage.ru_stime
        time.sleep(0.005)


def _import_everything() -> None:
    """Import every module of the package (and the scikit-learn parts it loads lazily) once,
    so no child pays for it. Imports only: no function of the package runs here, so no state
    (Hydra's singletons, caches) is set up before a child starts."""
    import importlib
    import pkgutil

    import unlearnbench

    for name in ("sklearn.datasets", "sklearn.model_selection", "sklearn.svm", "scipy.io"):
        importlib.import_module(name)
    for module in pkgutil.walk_packages(unlearnbench.__path__, "unlearnbench."):
        importlib.import_module(module.name)


def serve(repo: Path) -> None:
    sys.path.insert(0, str(repo.resolve()))
    os.chdir(repo)
    from unlearnbench.cli import main

    _import_everything()
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request, main)
        code, cpu = _wait(pid, request["timeout"])
        print(json.dumps({"returncode": code, "cpu_s": cpu}), flush=True)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
