"""``export kubernetes`` and ``export systemd``: the tasks for another scheduler (SPEC 12).

Output goes to stdout (or ``-o``); every warning and per-task error is one line on stderr. Exit 0
when every selected task was exported, 1 when some could not be (the others still are), 2 for
usage errors.
"""

from __future__ import annotations

import argparse
import re
import sys

from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UsageError, printable

_IMAGE = re.compile(r"^[^\s]+$")


def main(args: argparse.Namespace, home: Home) -> int:
    """Export the named tasks (or all) for Kubernetes or systemd."""
    from bassi_schedd.export import collect
    from bassi_schedd.export.kubernetes import is_dns_label

    names: list[str] = args.tasks
    if args.target == "kubernetes":
        if not _IMAGE.match(args.image):
            raise UsageError(f"--image {args.image!r} is not an image reference")
        if args.namespace is not None and not is_dns_label(args.namespace):
            raise UsageError(
                f"--namespace {args.namespace!r} is not a valid namespace name "
                "(lowercase letters, digits and '-', at most 63)"
            )
        result = collect.export_kubernetes(home, names, args.image, args.namespace)
        if "manifest" in result.files:
            collect.write_file(args.output or "-", result.files["manifest"])
    else:
        result = collect.export_systemd(home, names)
        if result.files:
            collect.write_units(args.output, result.files)
    for line in [n.line() for n in result.notes] + [p.line() for p in result.problems]:
        print(f"bassi-schedd: {printable(line)}", file=sys.stderr)
    total = len(result.exported) + len(result.problems)
    if result.problems:
        print(f"bassi-schedd: exported {len(result.exported)} of {total} tasks", file=sys.stderr)
        return 1
    return 0
