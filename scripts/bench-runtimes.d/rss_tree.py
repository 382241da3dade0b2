"""Memory of a process and every descendant: the sum of VmRSS (pages
shared between processes, such as node's own binary, counted once per
process), the sum of Pss from smaps_rollup (shared pages split between the
processes that map them), and how many processes of each command.
usage: rss_tree.py PID"""
import json, os, sys

root = int(sys.argv[1])
parent, comm = {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        with open(f"/proc/{p}/stat") as f:
            s = f.read()
        comm[int(p)] = s[s.index("(") + 1:s.rindex(")")]
        parent[int(p)] = int(s[s.rindex(")") + 2:].split()[1])
    except (OSError, ValueError):
        pass


def under(p):
    while p and p != 1:
        if p == root:
            return True
        p = parent.get(p, 0)
    return False


def field(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


rss = pss = 0
by = {}
for p in parent:
    if under(p):
        rss += field(f"/proc/{p}/status", "VmRSS")
        pss += field(f"/proc/{p}/smaps_rollup", "Pss")
        by[comm[p]] = by.get(comm[p], 0) + 1
print(json.dumps({"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1),
                  "processes": sum(by.values()), "by_command": by}))
