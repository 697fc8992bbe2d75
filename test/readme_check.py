"""Runs README.md's examples on a fresh stack and compares their output with what README shows.
Prints TAP lines (ok / not ok), one per example, and a plan.  Run by test/integration/readme.sh
after `make run` (test/stack.sh), with the stack's PG* and BREWML_* variables set.

    python3 test/readme_check.py README.md SCRATCH_DIR MAKE_RUN_OUTPUT [FIRST_TEST_NUMBER]

What README promises, and this checks (README's "This README is tested" says it to readers):
- README names, in a `code span`, every function, aggregate, table, view and composite type of
  the brewml, api and api_private schemas, and every brewml.* setting (read from the catalog).
- Every ```sql and ```sh block runs, in document order, but one whose previous non-blank line
  is <!-- not run: REASON -->; a fenced block of any other language must be so marked.
  Shell commands run in SCRATCH_DIR, a mirror of the checkout, one bash after another,
  variables carrying over.
- The default ports of make run become the test stack's where they are ports (127.0.0.1:PORT,
  localhost:PORT, port=PORT, port PORT), and /tmp/ becomes SCRATCH_DIR/, in the commands and
  the outputs shown alike.
- `-- → TEXT` on a statement's line, `# → TEXT` at the end of a command, or such comment lines
  of their own below it, one per line of output: the output matches TEXT, `...` standing for
  any text and runs of white space comparing alike; psql's t and f read as true and false; a
  remark in parentheses after two spaces is not output.  `→ ERROR:  message` means the
  statement must fail so.  A command must exit 0, unless its last such line is `(exit N)`.
- Comment lines `--  a | b` right below a statement, a header first: its result as a table
  (of two columns or more: other comment lines are remarks), rows in order; a last line
  `--  ...` allows more rows.
- A plain ``` block after <!-- output of: make run --> is make run's output, `...` standing
  for any lines.
- Any other statement or command must succeed.
"""
import os
import re
import signal
import subprocess
import sys

README, SCRATCH, MAKE_RUN_OUT = sys.argv[1:4]
ARROW = "→"
PORTS = {"5433": "BREWML_PGPORT", "8383": "BREWML_PUNKAPI_PORT", "8080": "BREWML_HTTP_PORT",
         "3000": "BREWML_POSTGREST_PORT", "3001": "BREWML_POSTGREST_ADMIN_PORT"}
PORT_RE = re.compile(r"(?:(?<=127\.0\.0\.1:)|(?<=localhost:)|(?<=port=)|(?<=port ))(5433|8383|8080|3000|3001)\b")
count = int(sys.argv[4]) - 1 if len(sys.argv) > 4 else 0


def report(passed, where, what, detail=""):
    global count
    count += 1
    first = what.strip().splitlines()[0] if what.strip() else what
    print(f"{'ok' if passed else 'not ok'} {count} - README.md:{where}: {first[:90]}")
    if not passed and detail:
        print("\n".join("# " + line for line in detail.rstrip().splitlines()[:40]))


def localise(text):
    """The default ports and /tmp/, as the test stack has them."""
    return PORT_RE.sub(lambda m: os.environ[PORTS[m.group(1)]], text).replace("/tmp/", SCRATCH + "/")


def pattern(expected):
    """A regular expression for expected text, `...` matching anything."""
    return re.compile(".*".join(re.escape(part) for part in expected.split("...")), re.S)


def matches(expected, actual):
    """Whether actual is expected, `...` matching anything and runs of white space alike."""
    fold = lambda text: re.sub(r"\s+", " ", text.strip())
    return pattern(fold(expected)).fullmatch(fold(actual)) is not None


def without_remark(text):
    """Expected output without a trailing remark: two spaces, then a parenthesis."""
    return re.split(r"\s{2,}\(", text.strip())[0]


def run(args, timeout, **kw):
    """subprocess.run in a session of its own, killed whole (children too) on a time-out."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        err += f"\n(killed after {timeout} s)"
    return subprocess.CompletedProcess(args, p.returncode, out, err)


def blocks(lines):
    """(kind, first line number, lines, previous non-blank line) for each fenced block."""
    i, previous = 0, ""
    while i < len(lines):
        m = re.match(r"^\s*(```|~~~)\s*([\w+-]*)", lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        fence, j = m.group(1), i + 1
        while j < len(lines) and not lines[j].lstrip().startswith(fence):
            j += 1
        yield m.group(2), i + 2, lines[i + 1:j], previous
        previous, i = "", j + 1


def psql(statement, table=False):
    args = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", statement]
    args[1:1] = ["-A", "-F", "|", "-P", "footer=off"] if table else ["-At"]
    return run(args, 300)


def sql_statements(block, first):
    """(first line, lines, comment lines right below) of each statement of an sql block."""
    statements, current, start, below = [], [], None, None
    for n, line in enumerate(block, first):
        comment_only = line.lstrip().startswith("--")
        code = "" if comment_only else line.split("--", 1)[0]
        if current or code.strip():
            below = None
            if not current:
                start = n
            current.append(line)
            if code.rstrip().endswith(";"):
                below = []
                statements.append((start, current, below))
                current = []
        elif comment_only and below is not None:
            below.append(line.strip()[2:])
        elif not line.strip():
            below = None
    if current:
        report(False, start, current[0], "a statement without its final ;")
    return statements


def check_sql(block, first):
    """Each statement of an sql block, with what its comments say it answers."""
    for start, text, below in sql_statements(block, first):
        sql = localise("\n".join(text).strip())
        inline = [m.group(1) for m in (re.search(r"--\s*" + ARROW + r"\s?(.*)$", t) for t in text) if m]
        shown = [m.group(1) for m in (re.match(r"\s*" + ARROW + r"\s?(.*)$", b) for b in below) if m]
        table = []
        if below and "|" in below[0]:
            for b in below:
                if "|" not in b and b.strip() != "...":
                    break
                table.append(b)
        if len(inline) + bool(shown) > 1:
            report(False, start, sql, "more than one → for one statement")
        elif inline or shown:
            expected = localise("\n".join(without_remark(e) for e in inline + shown))
            out = psql(sql)
            if expected.startswith("ERROR:"):
                got = out.stderr.strip().splitlines()[0] if out.stderr.strip() else "(no error)"
                report(out.returncode != 0 and matches(expected, got), start, sql,
                       f"expected {expected}\ngot {got}")
                continue
            got = {"t": "true", "f": "false"}.get(out.stdout.strip(), out.stdout.strip())
            report(out.returncode == 0 and matches(expected, got), start, sql,
                   f"expected: {expected}\ngot: {got}\n{out.stderr}")
        elif table:
            out = psql(sql, table=True)
            got = [[c.strip() for c in r.split("|")] for r in out.stdout.strip().splitlines()]
            more = table[-1].strip() == "..."
            want = [[localise(c.strip()) for c in r.split("|")] for r in (table[:-1] if more else table)]
            fits = out.returncode == 0 and (len(got) >= len(want) if more else len(got) == len(want))
            fits = fits and all(len(w) == len(g) and all(matches(a, b) for a, b in zip(w, g))
                                for w, g in zip(want, got))
            report(fits, start, sql, "expected:\n" + "\n".join(" | ".join(r) for r in want) +
                   "\ngot:\n" + "\n".join(" | ".join(r) for r in got) + "\n" + out.stderr)
        else:
            out = psql(sql)
            report(out.returncode == 0, start, sql, out.stderr)


def complete(text):
    """Whether text is a whole shell command: bash -n finds no open construct, no open heredoc."""
    p = subprocess.run(["bash", "-n", "-c", text], capture_output=True, text=True)
    return p.returncode == 0 and "here-document" not in p.stderr


def sh_commands(block, first):
    """[first line, text, shown output lines] of each command of an sh block."""
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
            m = re.search(r"\s#\s*" + ARROW + r"\s?(.*)$", current[-1])
            commands.append([start, "\n".join(current), [m.group(1)] if m else []])
            current = []
    if current:
        report(False, start, current[0], "an unfinished shell command")
    return commands


def check_sh(block, first, state):
    """Each command of an sh block, with the output its `# →` comments show."""
    for start, text, shown in sh_commands(block, first):
        script = (f"set -a\n[ -f {state} ] && . {state} 2>/dev/null\ncd {SCRATCH}\n"
                  f"{localise(text)}\nrc=$?\nexport -p >{state}\nexit $rc\n")
        out = run(["bash", "-c", script], 600, stdin=subprocess.DEVNULL)
        got = (out.stdout + out.stderr).strip()
        status = 0
        if shown and re.fullmatch(r"\(exit \d+\)", without_remark(shown[-1])):
            status = int(without_remark(shown.pop())[6:-1])
        if shown:
            # what README shows is the output, or the output and the messages (curl's meter among them)
            want = localise("\n".join(without_remark(e) for e in shown))
            fits = matches(want, out.stdout) or matches(want, got)
            report(fits and out.returncode == status, start, text,
                   f"expected (exit {status}):\n{want}\ngot (exit {out.returncode}):\n{got}")
        else:
            report(out.returncode == status, start, text, f"exit {out.returncode}, not {status}\n{got}")


def check_names(text):
    """README names every object of brewml, api and api_private, and every brewml.* setting."""
    out = psql("""
        SELECT p.proname FROM pg_proc p
         WHERE p.pronamespace IN ('brewml'::regnamespace, 'api'::regnamespace, 'api_private'::regnamespace)
        UNION SELECT c.relname FROM pg_class c
         WHERE c.relnamespace IN ('brewml'::regnamespace, 'api'::regnamespace, 'api_private'::regnamespace)
           AND c.relkind IN ('r', 'v', 'm', 'c')
        UNION SELECT name FROM pg_settings WHERE name LIKE 'brewml.%' ORDER BY 1""")
    spans = " ".join(re.findall(r"`([^`\n]+)`", text))
    names = out.stdout.split()
    missing = [n for n in names if not re.search(r"(?<!\w)" + re.escape(n) + r"(?!\w)", spans)]
    report(out.returncode == 0 and names and not missing, "*",
           "README names every function, aggregate, table, view, type and setting of brewml, api, api_private",
           f"missing: {' '.join(missing)}\n{out.stderr}")


def main():
    text = open(README, encoding="utf-8").read()
    lines = text.splitlines()
    state = os.path.join(SCRATCH, ".readme-env")
    check_names(text)
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
        elif kind:
            report(False, first, f"a ```{kind} block", "neither sql nor sh: mark it <!-- not run: why -->")
    print(f"1..{count}")


main()
