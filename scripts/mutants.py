"""`make mutants`: run mutmut over the money and queue modules and print the kill rate.

Configuration lives in pyproject.toml ([tool.mutmut]): which modules are mutated, which fast
tests run (never the drills). mutmut keeps results in mutants/ and re-tests only what changed;
``MUTANTS="core.money.*"`` narrows a run to some mutants (mutmut's name globs);
``MUTANTS_RECHECK=1`` tries the survivors again after new tests were written. Exits 1 when
fewer than TARGET of the mutants checked were killed; every surviving mutant on money is a
missing test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = str(ROOT / ".venv/bin/mutmut")
TARGET = 0.90
KILLED = {"killed", "timeout", "caught by type check"}


def main() -> int:
    names = os.environ.get("MUTANTS", "").split()
    jobs = os.environ.get("MUTANTS_JOBS", "2")
    run = [MUTMUT, "run", "--max-children", jobs]
    # a mutant that makes a test wait (a lock never released, a poll never answered) costs
    # no CPU, so mutmut's CPU-time limit never ends it: fail such a test after 30 s instead
    os.environ.setdefault("PYTEST_TIMEOUT", "30")
    # the type check pre-filter runs `python -m mypy` ([tool.mutmut]): the project's own
    os.environ["PATH"] = f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    if os.environ.get("MUTANTS_RECHECK") and (todo := recheck(results(), names)):
        # mutmut keeps a verdict until the mutated function changes: after new tests are
        # written, only naming the survivors makes it try them again
        subprocess.run([*run, *todo], cwd=ROOT, check=False)
    else:
        subprocess.run([*run, *names], cwd=ROOT, check=False)
    status = {
        name: st
        for name, st in results().items()
        if not names or any(fnmatch(name, n) for n in names)
    }
    checked = {n: s for n, s in status.items() if s not in ("not checked", "skipped")}
    if not checked:
        print("no mutant was checked")
        return 1
    by_status = Counter(checked.values())
    killed = sum(v for k, v in by_status.items() if k in KILLED)
    survivors: dict[str, list[str]] = defaultdict(list)
    for n, s in sorted(checked.items()):
        if s not in KILLED:
            survivors[n.split(".x_")[0].split(".xǁ")[0]].append(f"{n} ({s})")
    print("\nsurvivors (show one with: .venv/bin/mutmut show NAME):")
    for module, items in sorted(survivors.items()):
        print(f"  {module}: {len(items)}")
        for item in items:
            print(f"    {item}")
    print()
    table(status)
    rate = killed / len(checked)
    print(
        f"\nmutation score: {killed} of {len(checked)} killed ({rate:.1%}); "
        + ", ".join(f"{k} {v}" for k, v in by_status.most_common())
    )
    low = [m for m, r in module_rates(checked).items() if r < TARGET]
    if low:
        print(f"below {TARGET:.0%}: {', '.join(low)}")
    return 1 if low else 0


# the modules the issue names; core/payments/ is one figure for the package
MODULES = ("core.money", "core.payments", "core.queue", "core.refunds")


def module_of(name: str) -> str:
    return next((m for m in MODULES if name.startswith(m + ".")), name.split(".x")[0])


def module_rates(checked: dict[str, str]) -> dict[str, float]:
    seen: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for n, s in checked.items():
        seen[module_of(n)][0] += s in KILLED
        seen[module_of(n)][1] += 1
    return {m: k / t for m, (k, t) in seen.items()}


def table(status: dict[str, str]) -> None:
    """One row per named module: what the README's table shows."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for n, s in status.items():
        by_module[module_of(n)][s] += 1
    print(
        "| module | mutants | with a verdict | killed | by a test | by mypy | timeout | survived | not reached |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for m, c in sorted(by_module.items()):
        total = sum(c.values())
        unreached = c["not checked"] + c["skipped"]
        verdict = total - unreached
        killed = sum(c[k] for k in KILLED)
        rate = f"{killed / verdict:.1%}" if verdict else "-"
        print(
            f"| `{m}` | {total:,} | {verdict:,} | {killed:,} ({rate}) | {c['killed']:,} | "
            f"{c['caught by type check']:,} | {c['timeout']:,} | {verdict - killed:,} | {unreached:,} |"
        )


def results() -> dict[str, str]:
    """Every mutant's verdict as mutmut keeps it (name → status)."""
    if not (ROOT / "mutants").is_dir():
        return {}
    out = subprocess.run(
        [MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, st = line.strip().rpartition(": ")
        if sep:
            found[name] = st
    return found


def recheck(status: dict[str, str], names: list[str]) -> list[str]:
    """The mutants a new test may now kill (survivors, those no test reached) and those
    without a verdict yet (a run stopped before them), in one run."""
    return [
        n
        for n, st in status.items()
        if st in ("survived", "no tests", "not checked")
        and (not names or any(fnmatch(n, g) for g in names))
    ]


if __name__ == "__main__":
    sys.exit(main())
