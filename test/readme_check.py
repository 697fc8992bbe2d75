"""Runs README.md's examples on a fresh stack and compares their output with what README shows.
Prints TAP lines (ok / not ok), one per example.  Run by test/integration/readme.sh after
`make run` (test/stack.sh), with the stack's PG* and BREWML_* variables set.

    python3 test/readme_check.py README.md SCRATCH_DIR MAKE_RUN_OUTPUT [FIRST_TEST_NUMBER]

What README promises, and this checks (README's "How README is checked" says it to readers):
- Every ```sql and ```sh block runs, in document order, but one whose previous non-blank line
  is <!-- not run: REASON -->.  Shell commands run in SCRATCH_DIR, a mirror of the checkout,
  one bash after another, variables carrying over.
- The default ports of make run become the test stack's, and /tmp/ becomes SCRATCH_DIR/, in the
  commands and in the outputs shown alike.
- `-- → TEXT` after a statement, `# → TEXT` after a command (or on lines of their own below
  it, one per line of output): the output matches TEXT, `...` standing for any text.  psql's
  t and f read as true and false; runs of white space compare alike.  `→ ERROR:  message` means the statement must fail so.
- Comment lines `--  a | b` below a statement: its result as a table, header then rows;
  a last line `--  ...` allows more rows.
- A plain ``` block after <!-- output of: make run --> is make run's output, `...` lines
  standing for any lines.
- Any other statement or command must succeed.
"""
import os
import re
import subprocess
import sys

README, SCRATCH, MAKE_RUN_OUT = sys.argv[1:4]
ARROW = "→"
PORTS = {"5433": "BREWML_PGPORT", "8383": "BREWML_PUNKAPI_PORT", "8080": "BREWML_HTTP_PORT",
         "3000": "BREWML_POSTGREST_PORT", "3001": "BREWML_POSTGREST_ADMIN_PORT"}
count = int(sys.argv[4]) - 1 if len(sys.argv) > 4 else 0


def report(passed, where, what, detail=""):
    global count
    count += 1
    print(f"{'ok' if passed else 'not ok'} {count} - README.md:{where}: {what[:90]}")
    if not passed and detail:
        print("\n".join("# " + line for line in detail.rstrip().splitlines()[:40]))


def localise(text):
    """The default ports and /tmp/, as the test stack has them."""
    text = re.sub(r"(?<=[:=\s])(5433|8383|8080|3000|3001)\b", lambda m: os.environ[PORTS[m.group(1)]], text)
    return text.replace("/tmp/", SCRATCH + "/")


def pattern(expected):
    """A regular expression for expected text, `...` matching anything."""
    return re.compile(".*".join(re.escape(part) for part in expected.split("...")), re.S)


def matches(expected, actual):
    """Whether actual is expected, `...` matching anything and runs of white space alike."""
    fold = lambda text: re.sub(r"\s+", " ", text.strip())
    return pattern(fold(expected)).fullmatch(fold(actual)) is not None


def blocks(lines):
    """(kind, first line number, lines, previous non-blank line) for each fenced block."""
    i, previous = 0, ""
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        yield m.group(1), i + 2, lines[i + 1:j], previous
        previous, i = "", j + 1


def psql(statement, table=False):
    args = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", statement]
    args[1:1] = ["-A", "-F", "|", "-P", "footer=off"] if table else ["-At"]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def check_sql(block, first):
    """Each statement of an sql block, with what its comments say it answers."""
    statements, current, start = [], [], None
    for n, line in enumerate(block, first):
        code = line.split("--", 1)[0] if not line.lstrip().startswith("--") else ""
        if current or code.strip():
            if not current:
                start = n
            current.append(line)
            if code.rstrip().endswith(";"):
                statements.append([start, current, None, []])
                current = []
        elif line.lstrip().startswith("--") and statements:
            statements[-1][3].append(line.strip()[2:])
    for start, text, _, notes in statements:
        last = text[-1]
        arrow = re.search(r"--\s*" + ARROW + r"\s?(.*)$", last)
        sql = localise("\n".join(text).strip())
        rows = [r for r in notes if "|" in r or r.strip() == "..."]
        if arrow:
            # a remark in parentheses after two spaces is not output
            expected = localise(re.split(r"\s{2,}\(", arrow.group(1).strip())[0])
            run = psql(sql)
            if expected.startswith("ERROR:"):
                got = run.stderr.strip().splitlines()[0] if run.stderr.strip() else "(no error)"
                report(run.returncode != 0 and matches(expected, got), start, sql,
                       f"expected {expected}\ngot {got}")
                continue
            got = {"t": "true", "f": "false"}.get(run.stdout.strip(), run.stdout.strip())
            report(run.returncode == 0 and matches(expected, got), start, sql,
                   f"expected: {expected}\ngot: {got}\n{run.stderr}")
        elif rows:
            run = psql(sql, table=True)
            got = [[c.strip() for c in r.split("|")] for r in run.stdout.strip().splitlines()]
            more = rows[-1].strip() == "..."
            want = [[localise(c.strip()) for c in r.split("|")] for r in (rows[:-1] if more else rows)]
            fits = run.returncode == 0 and (len(got) >= len(want) if more else len(got) == len(want))
            fits = fits and all(len(w) == len(g) and all(matches(a, b) for a, b in zip(w, g))
                                for w, g in zip(want, got))
            report(fits, start, sql, "expected:\n" + "\n".join(" | ".join(r) for r in want) +
                   "\ngot:\n" + "\n".join(" | ".join(r) for r in got) + "\n" + run.stderr)
        else:
            run = psql(sql)
            report(run.returncode == 0, start, sql, run.stderr)


def complete(text):
    """Whether text is a whole shell command (bash -n finds no open construct)."""
    return subprocess.run(["bash", "-n", "-c", text], capture_output=True).returncode == 0


def check_sh(block, first, state):
    """Each command of an sh block, with the output its `# →` comments show."""
    commands, current, start = [], [], None
    for n, line in enumerate(block, first):
        stripped = line.strip()
        if not current and stripped.startswith("#"):
            m = re.match(r"#\s*" + ARROW + r"\s?(.*)$", stripped)
            if m and commands:
                commands[-1][2].append(m.group(1))
            continue
        if not current and not stripped:
            continue
        if not current:
            start = n
        current.append(line)
        if not line.rstrip().endswith("\\") and complete("\n".join(current)):
            text = "\n".join(current)
            m = re.search(r"\s#\s*" + ARROW + r"\s?(.*)$", current[-1])
            commands.append([start, text, [m.group(1)] if m else []])
            current = []
    if current:
        report(False, start, current[0], "an unfinished shell command")
    for start, text, expected in commands:
        script = (f"set -a\n[ -f {state} ] && . {state} 2>/dev/null\ncd {SCRATCH}\n"
                  f"{localise(text)}\nrc=$?\nexport -p >{state}\nexit $rc\n")
        run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600,
                             stdin=subprocess.DEVNULL)
        got = (run.stdout + run.stderr).strip()
        if expected:
            # what README shows is the output, or the output and the messages (curl's meter among them)
            want = localise("\n".join(re.split(r"\s{2,}\(", e)[0] for e in expected))
            report(matches(want, run.stdout) or matches(want, got), start, text.splitlines()[0],
                   f"expected:\n{want}\ngot:\n{got}")
        else:
            report(run.returncode == 0, start, text.splitlines()[0], f"exit {run.returncode}\n{got}")


def main():
    lines = open(README, encoding="utf-8").read().splitlines()
    state = os.path.join(SCRATCH, ".readme-env")
    for kind, first, block, previous in blocks(lines):
        if previous.startswith("<!-- not run:"):
            continue
        if kind == "sql":
            check_sql(block, first)
        elif kind == "sh":
            check_sh(block, first, state)
        elif kind == "" and previous == "<!-- output of: make run -->":
            shown = "\n".join(localise(line) for line in block)
            out = open(MAKE_RUN_OUT, encoding="utf-8", errors="replace").read()
            report(pattern(shown).search(out) is not None, first, "the output of make run",
                   f"expected:\n{shown}\ngot:\n{out[-3000:]}")
    print(f"1..{count}")


main()
