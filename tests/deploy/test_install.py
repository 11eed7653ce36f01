#!/usr/bin/env python3
"""deploy.install: `cmake --install` gives a tally that runs anywhere, on its own files.

1. `cmake --install BUILD --prefix P --strip` installs bin/tally, share/tally/schemas/*.avsc,
   share/tally/deploy/ (systemd, logrotate, Prometheus, Grafana, the properties file) and
   share/doc/tally/ (README and docs).
2. The installation is moved elsewhere (as the image copies it to /usr/local) and run from
   another directory: `tally config check` finds its reader schema under the moved
   prefix, and `tally produce` (which builds its Avro codec from the installed schemas)
   gets as far as the broker (here unreachable: it says so) instead of failing on schemas.
3. The installed binary does not hold the source tree's schema directory: it cannot read
   the source tree's schemas, and does not try.
4. What `tally run` opens at start (strace), run from the moved installation: files of the
   installation, shared libraries owned by the packages the Dockerfile's runtime stage
   installs (and their dependencies), /etc, /proc, /sys, /dev and its state directory;
   nothing else.
5. A binary copied without its share/ directory says where it looked and that schema.dir
   can point at the schemas; with schema.dir set it works.

Environment: TALLY_BUILD_DIR (the build tree), TALLY_SOURCE_DIR. Exit 0 passed, 1 failed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.path.realpath(os.environ.get("TALLY_SOURCE_DIR") or
                          os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TALLY_BUILD_DIR") or os.path.join(SOURCE, "build")


def run(cmd, cwd, **kw):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, **kw)


def runtime_packages():
    """The Debian packages the image's runtime stage installs, and everything they depend
    on (apt-cache), or None when apt-cache cannot say."""
    import re
    with open(os.path.join(SOURCE, "Dockerfile")) as fh:
        text = re.sub(r"\\\n", " ", fh.read())
    runtime = re.split(r"^FROM ", text, flags=re.M)[-1]
    m = re.search(r"apt-get install[^&]*?--no-install-recommends\s+([^&]+)", runtime)
    pkgs = [p for p in m.group(1).split() if not p.startswith("-")] if m else []
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + pkgs,
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not pkgs:
        return None
    return {l.strip() for l in r.stdout.splitlines() if l and not l.startswith(" ")} | \
        {"libc6", "libgcc-s1", "base-files", "tzdata"}


def image_opens(tally, root, cwd, env):
    """Everything `tally run` opens at start (strace), as the image would run it from
    /usr/local: files of the installation, shared libraries of the runtime stage's packages,
    /etc, /proc, /sys, /dev and its state directory; nothing else (not the source or build
    tree)."""
    import shutil as sh
    if not sh.which("strace") or not sh.which("dpkg"):
        return ["strace or dpkg missing: cannot list what tally run opens"]
    closure = runtime_packages()
    if closure is None:
        return ["apt-cache cannot resolve the runtime stage's packages"]
    trace = os.path.join(cwd, "trace")
    state = os.path.join(cwd, "state")
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", trace, tally, "run",
                    "-X", "kafka.bootstrap.servers=127.0.0.1:1", "-X", "state.dir=" + state,
                    "-X", "http.listen="], cwd=cwd, env=env, capture_output=True, timeout=120)
    opened = set()
    with open(trace) as fh:
        for line in fh:
            if " = -1 " in line:
                continue   # looked for, not there: not needed
            q = line.split('"')
            if len(q) >= 2:
                opened.add(os.path.normpath(os.path.join(cwd, q[1])))
    problems, owners = [], {}
    for path in sorted(opened):
        if path.startswith((root + "/", state, "/etc/", "/proc/", "/sys/", "/dev/")) or path == state:
            continue
        if re.search(r"/lib(asan|ubsan|lsan|tsan)\.so", path):
            continue   # a sanitizer build's runtime: not part of a release image
        # A system file (a shared library, a plugin directory): a package of the runtime
        # stage must own it.
        o = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True)
        if o.returncode != 0:
            o = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        pkgs = {p.strip() for p in o.stdout.split(":", 1)[0].split(",")} if o.returncode == 0 else set()
        if pkgs & closure:
            for p in pkgs & closure:
                owners[p] = owners.get(p, 0) + 1
            continue
        problems.append("tally run opens %s (%s), which the image's runtime stage lacks" % (
            path, ", ".join(sorted(pkgs)) or "no package"))
    if not owners:
        problems.append("no shared library seen in the trace of tally run")
    return problems


def main():
    problems = []
    tmp = tempfile.mkdtemp(prefix="tally-install-")
    try:
        prefix = os.path.join(tmp, "prefix")
        r = run(["cmake", "--install", BUILD, "--prefix", prefix, "--strip"], cwd=tmp)
        if r.returncode != 0:
            print("FAIL: cmake --install: %s" % r.stderr[-1000:])
            return 1
        want = ["bin/tally", "share/tally/schemas/1-behavior_event.avsc",
                "share/tally/schemas/2-interest_delta.avsc", "share/tally/schemas/3-attribution.avsc",
                "share/tally/schemas/5-attribution.avsc", "share/tally/schemas/6-attribution.avsc",
                "share/tally/schemas/4-credit_delta.avsc", "share/tally/schemas/7-credit_delta.avsc",
                "share/tally/schemas/10-behavior_event.avsc", "share/tally/schemas/11-attribution.avsc",
                "share/tally/deploy/systemd/tally.service",
                "share/tally/deploy/tally.properties", "share/tally/deploy/prometheus/alerts.yml",
                "share/doc/tally/README.md", "share/doc/tally/operations.md"]
        problems += ["not installed: %s" % w for w in want if not os.path.exists(os.path.join(prefix, w))]

        moved = os.path.join(tmp, "image", "usr", "local")
        os.makedirs(os.path.dirname(moved))
        shutil.move(prefix, moved)
        elsewhere = os.path.join(tmp, "elsewhere")
        os.makedirs(elsewhere)
        tally = os.path.join(moved, "bin", "tally")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        r = run([tally, "config", "check"], cwd=elsewhere, env=env)
        schema = os.path.join(moved, "share", "tally", "schemas", "10-behavior_event.avsc")
        if r.returncode != 0 or os.path.realpath(r.stdout.split(": ", 1)[-1].strip()) != os.path.realpath(schema):
            problems.append("moved installation: config check exit %d, %r %r" % (r.returncode, r.stdout, r.stderr))
        events = os.path.join(elsewhere, "e.csv")
        r = run([tally, "gen", "--events", "100", "--output", events], cwd=elsewhere, env=env)
        r = run([tally, "produce", "--input", events, "--format", "canonical", "--topic", "t",
                 "-X", "kafka.bootstrap.servers=127.0.0.1:1", "-X", "kafka.message.timeout.ms=2000"],
                cwd=elsewhere, env=env)
        if "cannot reach Kafka at 127.0.0.1:1" not in r.stderr or "not installed" in r.stderr:
            problems.append("moved installation: produce did not get to the broker: exit %d, %s" % (
                r.returncode, r.stderr[-800:]))
        with open(tally, "rb") as fh:
            # The source tree's schema directory is nowhere in it. (A sanitizer build keeps
            # the sources' file names for its reports, so the tree itself may be there.)
            if (SOURCE + "/schemas").encode() in fh.read():
                problems.append("the installed binary holds %s/schemas" % SOURCE)

        problems += image_opens(tally, moved, elsewhere, env)

        lone = os.path.join(tmp, "lone")
        os.makedirs(lone)
        shutil.copy(tally, lone)
        r = run([os.path.join(lone, "tally"), "config", "check"], cwd=elsewhere, env=env)
        if r.returncode != 1 or "not installed (looked in" not in r.stderr or "schema.dir" not in r.stderr:
            problems.append("a binary without its schemas: exit %d, %r" % (r.returncode, r.stderr))
        r = run([os.path.join(lone, "tally"), "config", "check", "-X",
                 "schema.dir=" + os.path.dirname(schema)], cwd=elsewhere, env=env)
        if r.returncode != 0:
            problems.append("a binary without its schemas, schema.dir set: exit %d, %r" % (r.returncode, r.stderr))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for p in problems:
        print("FAIL: " + p)
    print("%s: installed %d files checked, moved and run from elsewhere, no source path in "
          "the binary, a lone binary told where to look" % ("ok" if not problems else "FAIL", 10))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
