"""Server-side latency quantiles from Keel's Prometheus histograms (keel_inference_request_seconds).

Usage: python3 server_side_latency.py metrics.txt...
Prints, per model and file, the request count and the upper bucket bounds under which 50 % and 99 %
of requests fell (the histogram's resolution: buckets double from 10 us).
"""
import re
import sys
from collections import defaultdict

pattern = re.compile(r'^keel_inference_request_seconds_bucket\{model="([^"]+)",version="([^"]+)",le="([^"]+)"\} (\d+)')
for path in sys.argv[1:]:
    buckets = defaultdict(list)
    for line in open(path):
        match = pattern.match(line)
        if match:
            model, _, le, count = match.groups()
            buckets[model].append((float("inf") if le == "+Inf" else float(le), int(count)))
    for model, rows in sorted(buckets.items()):
        rows.sort()
        total = rows[-1][1]
        quantile = lambda q: next(le for le, count in rows if count >= q * total)
        print(f"{path}: {model}: {total} requests, server-side p50 <= {quantile(0.5) * 1e6:.0f} us, "
              f"p99 <= {quantile(0.99) * 1e6:.0f} us")
