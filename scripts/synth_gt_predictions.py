"""Write a ``moro synth`` split's ground truth as a prediction folder (the synth protocol's self-test).

    .venv/bin/python scripts/synth_gt_predictions.py --gt OUT/bench --pred PRED [--method ground-truth]
    .venv/bin/moro eval --protocol synth --gt OUT/bench --pred PRED   # a table of zeros, metrics_ok=1

Library function: :func:`moro.metrics.protocols.synth.write_gt_predictions`.
"""

from __future__ import annotations

import argparse

from moro.metrics.protocols.synth import write_gt_predictions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gt", required=True, help="split folder written by `moro synth` (e.g. OUT/bench)")
    ap.add_argument("--pred", required=True, help="prediction directory; files go to PRED/<method>/<sequence>.npz")
    ap.add_argument("--method", default="ground-truth")
    args = ap.parse_args()
    paths = write_gt_predictions(args.gt, args.pred, args.method)
    print(f"wrote {len(paths)} prediction file(s) under {args.pred}/{args.method}")


if __name__ == "__main__":
    main()
