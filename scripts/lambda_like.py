"""The functions as Lambda runs them, on this machine: what `make importtime` and `make bench` measure.

- python3.13 (the runtime's version), found by the layer's Makefile as `sam build` finds it, run from a
  virtualenv of its own so that its site-packages is as bare as the runtime's (a .pth file there, such as
  one this machine's sandbox writes to import certifi, would run in every process);
- the layer built by that Makefile, for this machine's CPU (the aarch64 wheels cannot load on x86_64),
  so it holds what Lambda gets: the same packages, the bytecode, nothing of what prune.txt drops;
- the runtime's boto3 beside it (the versions the dev lock pins), compiled as the runtime ships it;
- each handler copied alone into its own task folder, as `sam build` does;
- no bytecode written (`PYTHONDONTWRITEBYTECODE=1`: /var/task and /opt are read-only on Lambda);
- the function's environment from the template, plus what Lambda sets (LAMBDA_TASK_ROOT, the X-Ray
  daemon address and context variables, region, credentials); tracing on, as `Tracing: Active` has it;
- optionally a CPU share: Lambda gives a function CPU in proportion to its memory (1,769 MB is one
  vCPU). The process is pinned to one CPU and limited by a cgroup CPU quota where this machine lets us
  create one, else by a SIGSTOP/SIGCONT duty cycle (what `cpulimit` does); `CpuLimit.how` says which.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tweakwise_local.template import Resolver, function_environment, function_setting, load_template

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "lambda-like"
DRIVER = Path(__file__).resolve().parent / "lambda_driver.py"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "python-dateutil", "six", "jmespath", "urllib3")
MB_PER_VCPU = 1769  # Lambda: a function at 1,769 MB has one vCPU's worth of CPU time
CGROUP = Path("/sys/fs/cgroup/cpu")


def cpu_share(memory_mb: int) -> float:
    """The share of one CPU Lambda gives a function of this memory size."""
    return min(1.0, memory_mb / MB_PER_VCPU)


def python313() -> str:
    found = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "layers" / "tweakwise"), "python313"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode:
        raise SystemExit(found.stderr.strip() or "no python3.13 found")
    return found.stdout.strip()


def _pins() -> dict[str, str]:
    lines = (ROOT / "requirements-dev.lock").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))
    return {name: pins[name] for name in RUNTIME_PACKAGES}


def _quiet(command: list[str], **kwargs: Any) -> None:
    run = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if run.returncode:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{run.stderr[-2000:]}")


class Tree:
    """The layer, the runtime and the task folders under build/lambda-like, built once per run."""

    def __init__(self, root: Path = ROOT, build: Path = BUILD):
        """`root`: the checkout whose layer and functions are built (another one to compare commits)."""
        self.root = root
        self.template = load_template(root / "template.yaml")
        self.build = build
        self.python = python313()  # builds the layer and the runtime's bytecode
        self.interpreter = build / "python313" / "bin" / "python3.13"  # runs the processes: see make()
        self.layer = build / "opt" / "python"
        self.layer_without_bytecode = build / "opt-without-bytecode" / "python"
        self.runtime = build / "runtime"
        self.tasks: dict[str, Path] = {}

    def make(self) -> Tree:
        shutil.rmtree(self.build, ignore_errors=True)
        machine = {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine()]
        _quiet(
            [
                "make",
                "-s",
                "-C",
                str(self.root / "layers" / "tweakwise"),
                "build-TweakwiseLayer",
                f"ARTIFACTS_DIR={self.layer.parent}",
                f"PLATFORM=manylinux2014_{machine}",
                f"PIP={sys.executable} -m pip",
            ]
        )
        shutil.copytree(self.layer, self.layer_without_bytecode, ignore=shutil.ignore_patterns("__pycache__"))
        pins = [f"{name}=={version}" for name, version in _pins().items()]
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
        _quiet(
            [
                *pip,
                "--only-binary=:all:",
                "--python-version",
                "3.13",
                "--no-compile",
                "--target",
                str(self.runtime),
                *pins,
            ]
        )
        _quiet([self.python, "-m", "compileall", "-q", "-j", "0", str(self.runtime)])
        # The interpreter with a bare site-packages, as Lambda's (the base's .pth files are not read).
        _quiet([self.python, "-m", "venv", "--without-pip", str(self.interpreter.parent.parent)])
        for logical, resource in self.functions().items():
            task = self.build / "task" / logical
            task.mkdir(parents=True)
            handler = str(function_setting(self.template, logical, "Handler")).rsplit(".", 1)[0]
            shutil.copy(self.root / resource["Properties"]["CodeUri"] / f"{handler}.py", task)
            self.tasks[logical] = task
        return self

    def functions(self) -> dict[str, dict]:
        resources = self.template["Resources"].items()
        return {k: v for k, v in resources if v["Type"] == "AWS::Serverless::Function"}

    def memory(self, logical: str) -> int:
        return int(function_setting(self.template, logical, "MemorySize", 128))

    def environment(
        self,
        logical: str | None,
        resolver: Resolver,
        extra: dict[str, str] | None = None,
        bytecode: bool = True,
    ) -> dict[str, str]:
        """What the process of `logical` sees (None: a bare runtime, for `import boto3`)."""
        layer = self.layer if bytecode else self.layer_without_bytecode
        task = self.tasks[logical] if logical else self.build / "task"
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join(str(p) for p in (task, layer, self.runtime)),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LAMBDA_TASK_ROOT": str(task),
            "LAMBDA_RUNTIME_DIR": str(self.runtime),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "lambda-like",
            "AWS_SECRET_ACCESS_KEY": "lambda-like",
            "AWS_SESSION_TOKEN": "lambda-like",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "_AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1",
            "_AWS_XRAY_DAEMON_PORT": "2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
        if logical:
            env.update(
                {
                    "AWS_LAMBDA_FUNCTION_NAME": logical,
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory(logical)),
                    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                    "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{logical}",
                    **function_environment(self.template, logical, resolver),
                }
            )
        env.update(extra or {})
        return env

    def process_seconds(self, code: str, env: dict[str, str]) -> float:
        """Wall time of one whole `python3.13 -s -c code` process (start, import, exit)."""
        started = time.perf_counter()
        subprocess.run([self.interpreter, "-s", "-c", code], env=env, check=True, capture_output=True)
        return time.perf_counter() - started

    def invoke(
        self,
        logical: str,
        events: list[dict],
        env: dict[str, str],
        *,
        cpu_share: float | None = None,
        dynamodb_latency: float | None = None,
        sqs_latency: float | None = None,
    ) -> dict[str, Any]:
        """Init + the events, one invocation each, in a fresh process (optionally at a CPU share)."""
        with tempfile.TemporaryDirectory() as scratch:
            request = Path(scratch) / "request.json"
            out = Path(scratch) / "result.json"
            request.write_text(
                json.dumps(
                    {
                        "events": events,
                        "out": str(out),
                        "memory": self.memory(logical),
                        "timeout": float(function_setting(self.template, logical, "Timeout", 3)),
                        "dynamodb_latency": dynamodb_latency,
                        "sqs_latency": sqs_latency,
                    }
                )
            )
            with CpuLimit(cpu_share) as limit:
                process = subprocess.Popen(
                    [self.interpreter, "-s", str(DRIVER), str(request)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                limit.apply(process.pid)  # during its imports: the invocations are what is measured
                printed, _ = process.communicate(timeout=900)
            if process.returncode:
                raise RuntimeError(f"{logical} failed in its Lambda-like process:\n{printed[-3000:]}")
            return {**json.loads(out.read_text()), "printed": printed, "cpu_limit": limit.how}


class CpuLimit:
    """A share of one CPU for a child process: a cgroup (v1) CPU quota where it can be created, else a
    SIGSTOP/SIGCONT duty cycle."""

    PERIOD_US = 100_000

    def __init__(self, share: float | None):
        self.share = share
        self.how = "none"
        self.cgroup: Path | None = None
        self.stop = threading.Event()

    def __enter__(self) -> CpuLimit:
        if self.share is None or self.share >= 1:
            self.how = "one CPU (pinned)"
            return self
        group = CGROUP / f"tweakwise-bench-{os.getpid()}"
        with contextlib.suppress(OSError):
            group.mkdir()
            (group / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(int(self.PERIOD_US * self.share)))
            self.cgroup = group
            self.how = "one CPU (pinned) and a cgroup CPU quota"
            return self
        self.how = "one CPU (pinned) and a SIGSTOP/SIGCONT duty cycle"
        return self

    def apply(self, pid: int) -> None:
        os.sched_setaffinity(pid, {max(os.sched_getaffinity(0))})  # one CPU, as a Lambda vCPU at most
        if self.cgroup is not None:
            (self.cgroup / "cgroup.procs").write_text(str(pid))
        elif self.share is not None and self.share < 1:
            self._duty_cycle(pid)

    def _duty_cycle(self, pid: int) -> None:
        """Run `pid` for share x 10 ms of every 10 ms until stopped (the fallback without cgroups)."""

        def cycle() -> None:
            period = 0.01
            while not self.stop.is_set():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                time.sleep(period * self.share)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                time.sleep(period * (1 - self.share))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

        threading.Thread(target=cycle, daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.cgroup is not None:
            for _ in range(50):  # the group empties once its process has been reaped
                with contextlib.suppress(OSError):
                    self.cgroup.rmdir()
                    return
                time.sleep(0.1)


@contextlib.contextmanager
def local_aws_and_tweakwise(
    template: dict[str, Any], latency: float = 0.0
) -> Iterator[tuple[Resolver, Any, dict[str, str]]]:
    """A moto server (in this process, reached over HTTP) holding the template's resources, and the
    Tweakwise sandbox with demo data. Yields the Resolver (their names, the functions' ARNs), the
    sandbox, and the variables that point a function at both."""
    import logging

    from moto.server import ThreadedMotoServer

    from tweakwise.settings import ClientSettings, PublisherSettings
    from tweakwise_local.credentials import local_tweakwise
    from tweakwise_local.provision import LOCAL_AWS_ENVIRONMENT, provision
    from tweakwise_local.template import variable_target

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's line per request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    saved = dict(os.environ)
    # Always the sandbox: measurements never call a real Tweakwise, whatever credentials are exported.
    os.environ.update(
        {**LOCAL_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": f"http://{host}:{port}", "TWEAKWISE_MODE": "sandbox"}
    )
    tweakwise = local_tweakwise(demo=True)
    tweakwise.sandbox.latency = latency
    try:
        resolver = Resolver(template)
        secret = variable_target(template, ClientSettings.variable("secret_id"), resolver)
        provision(template, resolver, {secret: tweakwise.credentials})
        for logical, resource in template["Resources"].items():
            if resource["Type"] == "AWS::Serverless::Function":
                arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{logical}"
                resolver.resources[logical] = {"Ref": logical, "Arn": arn}
        local = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            ClientSettings.variable("api_url"): tweakwise.url,
            # the publish check's shopper-facing API: the sandbox serves it too (never the real gateway)
            PublisherSettings.variable("frontend_url"): tweakwise.url,
        }
        yield resolver, tweakwise, local
    finally:
        tweakwise.stop()
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)
