"""include/lethe.h keeps its word (run by tests/test_python.c with
/usr/bin/python3): check_header.py HEADER exits 0 only if every function it
declares returns lethe_status or is named (or matched by a `*` pattern) in
the header's own "Exempt:" list, every name of that list is declared, and
the internal helpers stay out (lethe_fail, the DDPM's float copies)."""
import fnmatch
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
failures = []

m = re.search(r"\* Exempt:(.*?)\n \*\n", text, re.S)
if not m:
    sys.exit("check_header: no 'Exempt:' list in the header's opening comment")
listed = set(re.findall(r"(?:lethe_|\*_)[a-z0-9_]*\*?", m.group(1)))
listed.discard("lethe_status")   # the words "return a lethe_status"

code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
code = re.sub(r"//[^\n]*", "", code)
code = re.sub(r"^\s*#[^\n]*", "", code, flags=re.M)
declared = {}
for stmt in re.split(r"[;{}]", code):
    stmt = re.sub(r"__attribute__\s*\(\(.*?\)\)", "", " ".join(stmt.split()))
    d = re.match(r"^(?:extern )?([A-Za-z_][\w \*]*?)\s*\b(lethe_\w+)\s*\(.*\)$", stmt)
    if d and not d.group(1).startswith("typedef"):
        declared[d.group(2)] = " ".join(d.group(1).replace("*", " * ").split())
if len(declared) < 100:
    failures.append("only %d functions parsed from the header: the parser lost its way" %
                    len(declared))

def exempt(name):
    return any(fnmatch.fnmatchcase(name, pat) for pat in listed)

for name, ret in sorted(declared.items()):
    if ret != "lethe_status" and not exempt(name):
        failures.append("%s returns %s, is not lethe_status and is not in the Exempt list"
                        % (name, ret))
for pat in sorted(listed):
    hits = [n for n in declared if fnmatch.fnmatchcase(n, pat)]
    if not hits:
        failures.append("the Exempt list names %s, which the header does not declare" % pat)
    elif all(declared[n] == "lethe_status" for n in hits):
        failures.append("the Exempt list names %s, which returns lethe_status" % pat)
for internal in ("lethe_fail", "sqrt_ab_f", "sqrt_1m_ab_f"):
    if re.search(r"\b%s\b" % internal, code):
        failures.append("%s is internal but declared in the public header" % internal)

for f in failures:
    print("check_header: " + f, file=sys.stderr)
print("check_header: %d functions, %d returning lethe_status, %d exempt by %d names" %
      (len(declared), sum(r == "lethe_status" for r in declared.values()),
       sum(r != "lethe_status" for r in declared.values()), len(listed)))
sys.exit(1 if failures else 0)
