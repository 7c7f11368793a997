"""``python -m berthwatch.synth tartus OUT_DIR`` | ``python -m berthwatch.synth random SEED OUT_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from berthwatch.synth import random_pair, write_tartus_sample

    ap = argparse.ArgumentParser(prog="python -m berthwatch.synth", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tartus", help="write the Tartus sample pair (sample_tiles/)")
    t.add_argument("out_dir", type=Path)
    r = sub.add_parser("random", help="write a random pair with truth")
    r.add_argument("seed", type=int)
    r.add_argument("out_dir", type=Path)
    r.add_argument("--pixel-size", type=float, default=0.8)
    r.add_argument("--layout", default="auto")
    r.add_argument("--bands", default="analytic", choices=["analytic", "visual"])
    r.add_argument("--size", type=int, nargs=2, default=(1000, 750), metavar=("COLS", "ROWS"))
    args = ap.parse_args(argv)
    if args.cmd == "tartus":
        paths = write_tartus_sample(args.out_dir)
    else:
        pair = random_pair(args.seed, pixel_size_m=args.pixel_size, layout=args.layout, band_layout=args.bands,
                           size_px=tuple(args.size))  # fmt: skip
        paths = pair.write(args.out_dir)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
