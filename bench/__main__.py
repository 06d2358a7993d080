"""Run every benchmark module in this package (each exposes ``main()``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str]) -> int:
    names = argv or sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )
    failed = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # report and go on with the others
            failed.append(name)
            print(f"bench.{name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"(bench.{name}: {time.perf_counter() - t0:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
