"""Benchmark: the requests of ``bench/api_lists.py``, counted in CPU instructions.

    DEBUG=1 .venv/bin/python bench/instructions.py [--requests 20] [--only visits]

Wall time on this kind of VM drifts by up to ±50 % over minutes, so a change worth 2 %
of a request cannot be told from noise by timing it. Valgrind's callgrind counts the
instructions this process executes instead: the same code, data and interpreter give
the same count to within 0.1 %, whatever else the machine is doing. The count is this
process's work only: PostgreSQL's (another process) and the time spent waiting for it
are not in it. Use it to compare two versions of the code (run it on each), and
``bench/api_lists.py`` for the goals, which are about time.

It replays the requests of the last ``bench/api_lists.py`` report
(``bench/results/api_lists.json``: its database, personas and lists, run that first):
``/healthz``, each persona's ``/api/v1/me/`` (the floor) and each list. The requests run
in one process under ``valgrind --tool=callgrind`` (Debian's ``valgrind``), set up as
``bench/api_lists.py`` sets up its own (``DEBUG`` off while counting, the web process's
collector), with ``--warmup`` requests first; each case's ``--requests`` requests are
counted with the collector paused (a collection lands in whichever request allocates
past the threshold, so it would make the counts depend on the order of the cases).

Prints instructions per request, and per request above the persona's floor, and writes
``bench/results/instructions.json``. The process starts about a minute slower under
valgrind; a run takes a few minutes.
"""

from __future__ import annotations

import argparse
import gc
import json
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402

SOURCE = common.RESULTS / "api_lists.json"
RESULTS = common.RESULTS / "instructions.json"
#: The C function that brackets each case's counted requests: callgrind counts inside
#: it (``--toggle-collect``) and writes one part per case after it (``--dump-after``).
#: Nothing else on a request's path calls ``operator.call``.
BRACKET = "_operator_call"
_TOTALS = re.compile(rb"^(?:totals|summary):\s*(\d+)", re.MULTILINE)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="Counted requests per case.")
    parser.add_argument("--warmup", type=int, default=5, help="Uncounted requests per case.")
    parser.add_argument(
        "--only", default="", help="Only the lists whose path contains this text (and floors)."
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def cases(report: dict[str, Any], only: str) -> list[dict[str, Any]]:
    """``/healthz``, each persona's floor and each list of ``report`` (with ``only``, the
    lists whose path contains it), in that order."""
    personas = {role: persona["username"] for role, persona in report["personas"].items()}
    found: list[dict[str, Any]] = [{"label": "/healthz", "role": None, "path": "/healthz"}]
    for role, username in personas.items():
        found.append(
            {"label": "/api/v1/me/ (floor)", "role": role, "user": username, "path": "/api/v1/me/"}
        )
    for result in report["results"]:
        if only and only not in result["endpoint"]:
            continue
        sync = " sync" if result["mode"] == "cursor" else ""
        found.append(
            {
                "label": result["endpoint"] + sync,
                "role": result["role"],
                "user": personas[result["role"]],
                "path": f"{result['endpoint']}?{result['query']}",
            }
        )
    return found


def child(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Under valgrind: set up as ``bench/api_lists.py`` does, run every case, print the
    cases (as JSON) in the order of callgrind's parts."""
    import django

    django.setup()
    from django.conf import settings

    from tenancy.api.views import issue_tokens
    from tenancy.models import Membership, Tenant
    from tenancy.runtime import prepare_web_process
    from tenancy.scope import tenant_scope

    tenant = Tenant.objects.get(slug=report["tenant"]["slug"])
    todo = cases(report, args.only)
    clients: dict[str | None, Any] = {None: common.https_client()}
    with tenant_scope(tenant):
        for case in todo:
            if case["role"] in clients:
                continue
            member = Membership.objects.select_related("user", "org_unit", "tenant").get(
                user__username=case["user"]
            )
            token = issue_tokens(member)["access"]
            credential = {"Authorization": f"Bearer {token}"}
            clients[case["role"]] = common.https_client(headers=credential)
    prepare_web_process()
    settings.DEBUG = False
    for case in todo:
        client, path = clients[case["role"]], case["path"]
        statuses: list[int] = []
        for _ in range(args.warmup):
            statuses.append(client.get(path).status_code)

        def counted(client: Any = client, path: str = path, statuses: list[int] = statuses) -> None:
            for _ in range(args.requests):
                statuses.append(client.get(path).status_code)

        gc.collect()
        gc.disable()
        try:
            operator.call(counted)  # the bracket: one callgrind part
        finally:
            gc.enable()
        case["statuses"] = sorted(set(statuses))
    print(json.dumps(todo))


def main() -> None:
    args = parse_args()
    if not SOURCE.exists():
        sys.exit(f"No {SOURCE.relative_to(ROOT)}: run bench/api_lists.py first.")
    report = json.loads(SOURCE.read_text())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@" + report["database"])
    if args.child:
        child(args, report)
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind).")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        command = [
            valgrind,
            "--tool=callgrind",
            "--collect-atstart=no",
            f"--toggle-collect={BRACKET}",
            f"--dump-after={BRACKET}",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            f"--requests={args.requests}",
            f"--warmup={args.warmup}",
            f"--only={args.only}",
        ]
        print("Running the requests under callgrind (a few minutes) …", file=sys.stderr)
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            sys.exit(f"The counted run failed:\n{run.stderr[-4000:]}")
        todo = json.loads(run.stdout.strip().splitlines()[-1])
        parts = sorted(
            Path(scratch).glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1])
        )
        if len(parts) != len(todo):
            sys.exit(f"Expected {len(todo)} callgrind parts, found {len(parts)}.")
        for case, part in zip(todo, parts, strict=True):
            totals = _TOTALS.search(part.read_bytes())
            if totals is None:
                sys.exit(f"No totals in {part.name}.")
            case["instructions_per_request"] = round(int(totals.group(1)) / args.requests)

    floors = {case["role"]: case for case in todo if case["path"] == "/api/v1/me/"}
    health = todo[0]["instructions_per_request"]
    header = (
        f"{'endpoint':<30} {'role':<8} {'instr/request':>14} {'above floor':>12} {'÷ /healthz':>11}"
    )
    print()
    print(header)
    print("-" * len(header))
    for case in todo:
        count = case["instructions_per_request"]
        floor = floors.get(case["role"])
        above = None
        if floor is not None and floor is not case:
            above = count - floor["instructions_per_request"]
        case["above_floor"] = above
        case["over_healthz"] = round(count / health, 2)
        print(
            f"{case['label']:<30} {case['role'] or '-':<8} {count:>14,} "
            f"{'' if above is None else f'{above:,}':>12} {case['over_healthz']:>11.2f}"
        )
    bad = [case["label"] for case in todo if case["statuses"] != [200]]
    if bad:
        print(f"\nNot every request answered 200: {', '.join(bad)}", file=sys.stderr)
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "source": str(SOURCE.relative_to(ROOT)),
                "source_generated_at": report["generated_at"],
                "python": sys.version.split()[0],
                "requests": args.requests,
                "warmup": args.warmup,
                "cases": todo,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
