"""What the benchmarks share: running SQL through psql and timing it on the server."""
import re
import subprocess

TIME = re.compile(r"^Time: ([0-9.]+) ms.*$", re.M)


def psql(*commands, sep="|"):
    """Runs the commands in one psql session (sent on standard input, so a command may be
    long), stopping at the first error; returns the unaligned output."""
    script = "".join(c + "\n" if c.startswith("\\") else c + ";\n" for c in commands)
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-F", sep],
                       capture_output=True, text=True, input=script)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed ({r.returncode}): {r.stderr.strip()}\nscript: {script[:500]}")
    return r.stdout


def sql_seconds(query, runs=3, setup=()):
    """The best server-side time of query over runs, and its output (of the last run)."""
    best, out = None, ""
    for _ in range(runs):
        text = psql(*setup, "\\timing on", query)
        seconds = float(TIME.findall(text)[-1]) / 1000
        out = TIME.sub("", text).strip()
        best = seconds if best is None else min(best, seconds)
    return best, out
