"""Entry point of one measurement's fresh process: ``python -m moro.bench.child '<json spec>'``.

Prints one JSON line with the spec and its result (peak memory included); see :mod:`moro.bench.speed`.
"""

from __future__ import annotations

import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m moro.bench.child '<json spec>'", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    from moro.allocator import tune_allocator

    tune_allocator()  # as in the `moro` command, before torch allocates
    from moro.bench.speed import measure

    print(json.dumps(measure(json.loads(args[0]))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
