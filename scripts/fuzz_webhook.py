"""Schemathesis against `make run`: starts the local bundle on a free port, fuzzes POST /webhooks/catalog
from docs/catalog-webhook.openapi.yaml with every request signed (scripts/fuzz_hooks.py), and fails on any
5xx or any answer the document does not allow. Usage: fuzz_webhook.py SCHEMATHESIS [MAX_EXAMPLES]"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tweakwise_local.process import api_url, running, signing_secret

ROOT = Path(__file__).resolve().parent.parent

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def main() -> int:
    schemathesis = sys.argv[1]
    max_examples = sys.argv[2] if len(sys.argv) > 2 else "150"
    command = [sys.executable, "-m", "tweakwise_local.run", "--api-port", "0"]
    with running(command, {"POWERTOOLS_LOG_LEVEL": "ERROR"}) as (_process, banner):
        api, secret = api_url(banner), signing_secret(banner)
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "scripts.fuzz_hooks",
            "WEBHOOK_SIGNING_SECRET": secret,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "tweakwise")]),
        }
        failed = 0
        # One run per mode: each gets its own FUZZ_EXAMPLES (the "all" mode shares them between the two).
        for mode in ("positive", "negative"):
            failed |= _run(schemathesis, api, max_examples, mode, env)
        return failed


def _run(schemathesis: str, api: str, max_examples: str, mode: str, env: dict[str, str]) -> int:
    print(f"schemathesis: {mode} examples against {api}/webhooks/catalog", flush=True)
    return subprocess.run(
        [
            schemathesis,
            "run",
            str(ROOT / "docs" / "catalog-webhook.openapi.yaml"),
            "--url",
            api,
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            max_examples,
            "--workers",
            "1",
            "--seed",
            os.environ.get("FUZZ_SEED") or "20261128",
            # No example database: every run (a fresh clone or a dev tree) generates the same requests.
            "--generation-database",
            "none",
            "--suppress-health-check",
            "too_slow,data_too_large",
            "--no-color",
            "--mode",
            mode,
        ],
        cwd=ROOT,
        env=env,
        check=False,
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
