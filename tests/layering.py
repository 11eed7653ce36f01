#!/usr/bin/env python3
"""layering.py -- every room includes only the rooms below it (docs/architecture.md,
"The layering rule"). Reads each tracked C file's #include "..." lines; a path with a
directory names that room, a bare name must be a file of the same room. Prints each
include that breaks the rule and exits 1; exits 0 with a one-line summary otherwise.

    python3 tests/layering.py [REPO]
"""
import os
import re
import subprocess
import sys

# room -> the rooms it may include (itself always allowed).
BELOW = {
    "lib": set(),
    "domain": {"lib"},
    "engine": {"lib", "domain"},
    "ingest": {"lib", "domain", "engine"},
    "features": {"lib", "domain", "engine"},
    "model": {"lib", "domain", "engine", "features"},
    "sink": {"lib", "domain", "engine", "model"},
    "app": {"lib", "domain", "engine", "ingest", "features", "model", "sink"},
    "cmd": {"lib", "domain", "engine", "ingest", "features", "model", "sink", "app"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else "."
    files = subprocess.run(["git", "-C", repo, "ls-files", "--cached", "--others",
                            "--exclude-standard", "*.c", "*.h"], check=True,
                           capture_output=True, text=True).stdout.split()
    bad, seen = [], 0
    for path in files:
        room = path.split("/", 1)[0]
        if room not in BELOW or not os.path.isfile(os.path.join(repo, path)):
            continue
        with open(os.path.join(repo, path), encoding="utf-8") as f:
            text = f.read()
        for m in INCLUDE.finditer(text):
            seen += 1
            inc = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            if "/" not in inc:
                if not os.path.exists(os.path.join(repo, os.path.dirname(path), inc)):
                    bad.append("%s:%d: \"%s\" is not a file of %s/; name its room" %
                               (path, line, inc, room))
                continue
            target = inc.split("/", 1)[0]
            if target != room and target not in BELOW[room]:
                bad.append("%s:%d: %s/ may not include %s (%s/ is not below it)" %
                           (path, line, room, inc, target))
    for b in bad:
        print(b)
    if bad:
        print("%d include(s) break the layering rule" % len(bad))
        return 1
    print("%d includes in %d rooms follow the layering rule" % (seen, len(BELOW)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
