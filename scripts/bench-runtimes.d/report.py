"""Medians of scripts/bench-runtimes' JSON lines (stdin: one object a line,
each with "scenario", "stack", "run"); prints one "median" line per scenario
and stack, the numeric fields as medians of the runs and the runs' values."""
import json, statistics, sys
from collections import OrderedDict

groups = OrderedDict()
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "run" not in r or r.get("median"):
        continue
    groups.setdefault((r["scenario"], r["stack"]), []).append(r)

for (scenario, stack), rows in groups.items():
    out = {"scenario": scenario, "stack": stack, "median": True, "runs": len(rows)}
    keys = []
    for r in rows:
        for k, v in r.items():
            if k not in keys and k not in ("scenario", "stack", "run"):
                keys.append(k)
    for k in keys:
        vals = [r.get(k) for r in rows]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if nums and len(nums) == len(vals):
            out[k] = round(statistics.median(nums), 3)
            out[k + "_runs"] = nums
        elif vals and all(isinstance(v, dict) for v in vals):
            # e.g. init_ms: {function: ms}, a median per key
            out[k] = {f: round(statistics.median([v[f] for v in vals if f in v]), 3)
                      for f in vals[0]}
            out[k + "_runs"] = vals
        elif any(v is not None for v in vals):
            out[k] = next(v for v in vals if v is not None) if len(set(map(json.dumps, vals))) == 1 else vals
    print(json.dumps(out))
