"""What a case needs of its host, and whether this machine gives it (VENUE=native).

The matrix's expectations are the oracle's for the test host (cases.testhost_facts: 2 nodes,
512 x 2M and 2 x 1G pools). A case runs natively only where this machine gives the oracle the
same outcome and has what the case's zones take: the host NUMA nodes they bind to, the free huge
pages they reserve, KSM and THP where they are asked for. Otherwise it is skipped natively with
the reason (and run in the test host under VENUE=auto).
"""
from __future__ import annotations

from pathlib import Path

from memvisor import venue
from memvisor.oracle import Expectation, HostFacts, evaluate

from .cases import Case, testhost_facts

HUGEPAGES = Path("/sys/kernel/mm/hugepages")
NODES = Path("/sys/devices/system/node")
MiB = 1 << 20


def _int(path: Path, default: int = 0) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def facts_here() -> HostFacts:
    """This machine as the oracle sees a host; the directories are the test host's, since each
    case's setup creates them."""
    nodes = tuple(sorted(int(p.name[4:]) for p in NODES.glob("node[0-9]*"))) or (0,)
    sizes, free = [], {}
    for d in sorted(HUGEPAGES.glob("hugepages-*kB")) if HUGEPAGES.is_dir() else []:
        size = int(d.name[len("hugepages-"):-2]) * 1024
        sizes.append(size)
        free[size] = {n: _int(NODES / f"node{n}" / "hugepages" / d.name / "free_hugepages")
                      for n in nodes}
    default = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("Hugepagesize:"):
                default = int(line.split()[1]) * 1024
    except OSError:
        pass
    return HostFacts(page_size=4096, default_hugepage_size=default,
                     hugepage_sizes=tuple(sorted(sizes)), free_hugepages=free, nodes=nodes,
                     directories=testhost_facts().directories)


def _size(n: int) -> str:
    return f"{n >> 30} GiB" if n >= 1 << 30 and not n % (1 << 30) else f"{n // MiB} MiB"


def unmet(case: Case, here: HostFacts) -> str | None:
    """Why `case` cannot run on a host with `here`'s facts, or None when it can."""
    needs: list[str] = []
    if case.guest == "linux":
        why_not = venue.native_linux()
        if why_not:
            needs.append(f"a KVM that runs Debian's kernel ({why_not})")
    if isinstance(case.expect, Expectation):
        pages: dict[tuple[int, int | None], int] = {}
        for z in case.expect.zones:
            if z.host_numa_node is not None and z.host_numa_node not in here.nodes:
                needs.append(f"host NUMA node {z.host_numa_node} (this machine has "
                             f"{len(here.nodes)} node{'s' if len(here.nodes) > 1 else ''})")
            if z.hugepages:
                key = (z.page_size, z.host_numa_node)
                pages[key] = pages.get(key, 0) + z.hugepages
            if z.mergeable and not Path("/sys/kernel/mm/ksm").is_dir():
                needs.append("KSM (no /sys/kernel/mm/ksm)")
            if z.thp and not Path("/sys/kernel/mm/transparent_hugepage").is_dir():
                needs.append("THP (no /sys/kernel/mm/transparent_hugepage)")
        for (size, node), n in sorted(pages.items(), key=lambda kv: (kv[0][0], kv[0][1] or -1)):
            free = here.free_hugepages.get(size, {})
            have = free.get(node, 0) if node is not None else sum(free.values())
            if have < n:
                where = f" on host node {node}" if node is not None else ""
                needs.append(f"{n} free {_size(size)} huge pages{where} (this machine has "
                             f"{have})")
    if not needs:
        outcome = evaluate(case.config, here)
        if outcome != case.expect:
            if isinstance(outcome, Expectation):
                what = "booted differently"
            elif isinstance(case.expect, Expectation) or outcome.rule != case.expect.rule:
                what = f"rejected by rule {outcome.rule}"
            else:   # the same rule, and more of them (the pools): the error may name either
                what = f"rejected by rule {outcome.rule} and by others as well"
            needs.append(f"the test host's pools and nodes: on this machine the configuration "
                         f"would be {what}")
    return "needs " + "; ".join(dict.fromkeys(needs)) if needs else None

