"""calsync benchmarks (`python -m bench`, `make bench`).

(a) cold start as Lambda pays it (bench/coldstart.py): each function, run from its built
    artifacts in a fresh interpreter, imports its handler and answers its sample event, against a
    baseline that imports boto3, creates one DynamoDB client and does one GetItem (targets: HTTP
    functions at most 1.5x, the others 2.0x; docs/adr/0010); as shipped, and with SnapStart
    emulated by a fork after the before-snapshot hooks (docs/adr/0025), judged on that column;
(b) throughput of the filtering rules (``select_for_person``) on 10,000 events, against
    ``json.loads`` of the same events as stored items (target: rules at most 1.0x json.loads);
(c)-(e) requests and writes per poll or notification of each provider (bench/caldav.py, ...);
(g) full-sync throughput: events per second and DynamoDB requests per event of the first sync of
    a 1,000- and a 5,000-event calendar (bench/fullsync.py, S12);
(h) what reads and updates cost per 1,000 people per month, polling vs the live channel, from
    request counts measured in-process (bench/cost.py, issue 15);
(i) write cost (items, and WCU on DynamoDB Local) of one moved event on a calendar with 1, 10, 100
    and 1,000 subscribers (bench/sharing.py, docs/scaling.md).

Apart (`make sim PEOPLE=N`, `python -m bench.sim`): a compressed working day of N people against
DynamoDB Local through the handlers — bench/sim.py, docs/scaling.md section 0.

Numbers are medians of interleaved runs, so that a noisy neighbour slows both sides alike.
Nothing here asserts: it prints the numbers, the targets and whether they were met.
"""


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns under a header line."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)
