"""calsync benchmarks (`python -m bench`, `make bench`).

(a) cold import time of each function's handler module in a fresh interpreter, against
    ``import boto3`` alone (target: the API function at most 1.5x boto3);
(b) throughput of the filtering rules (``select_for_person``) on 10,000 events, against
    ``json.loads`` of the same events as stored items (target: rules at most 1.0x json.loads);
(c)-(e) requests and writes per poll or notification of each provider (bench/caldav.py, ...);
(g) full-sync throughput: events per second and DynamoDB requests per event of the first sync of
    a 1,000- and a 5,000-event calendar (bench/fullsync.py, S12);
(h) what reads and updates cost per 1,000 people per month, polling vs the live channel, from
    request counts measured in-process (bench/cost.py, issue 15);
(i) write cost (items, and WCU on DynamoDB Local) of one moved event on a calendar with 1, 10, 100
    and 1,000 subscribers (bench/sharing.py, docs/scaling.md).

Numbers are medians of interleaved runs, so that a noisy neighbour slows both sides alike.
Nothing here asserts: it prints the numbers, the targets and whether they were met.
"""
