"""Regenerate constrain/data/builtin_tables.bin, or check it (--check), in a fresh process.

Run it after changing a module that the tables depend on (``constrain.builtin_tables._SOURCES``):
until then, processes ignore the shipped tables and compute their own.
"""

import argparse
import sys

from constrain import builtin_tables


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="recompute the tables and compare them with the shipped ones instead of writing")
    if parser.parse_args().check:
        problems = builtin_tables.check()
        for problem in problems:
            print(f"{builtin_tables.DATA.name}: {problem}; regenerate with: python scripts/builtin_tables.py",
                  file=sys.stderr)
        return 1 if problems else 0
    print(builtin_tables.write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
