#!/usr/bin/env python3
"""model/ftrl.c against independent FTRL-Proximal implementations (ftrl_reference.py).

A seeded stream of 2,000 examples with d = 20 (coordinate 0 the bias; 1-2 always 0; 3-8
sparse, about 1 in 8 non-zero; the rest dense, on different scales; labels drawn from a
fixed logistic model; importance weights 1 for most examples, 0.25, 0.5, 3 and 0 for
some) is written to a CSV and replayed, for several (alpha, beta, l1, l2), through:

  tally      `bench_ftrl --replay` (the C model; path in $TALLY_FTRL_DRIVER or --driver)
  paper      ftrl_reference.PaperFTRL, Algorithm 1 of McMahan et al. (KDD 2013)
  river      ftrl_reference.RiverFTRL, River's optim.FTRLProximal driven by Algorithm 1
             (when river is installed; the output says when it is not)

Every prediction made before an update must agree to 1e-9 (absolute), and so must the
final weights; exactly the same coordinates must be 0 (and with a strong l1, some that
the stream does use). One
setting replays with --roundtrip (the C model is encoded and decoded every 97 examples).
For information it also prints how far River's LogisticRegression(optimizer=FTRLProximal)
is from Algorithm 1 (its weights lag one update; see ftrl_reference.py).

Prints one line per check and "N passed, N failed"; exit status 1 on any failure.
"""

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ftrl_reference as ref  # noqa: E402

TOL = 1e-9
D = 20
N = 2000

# (alpha, beta, l1, l2, roundtrip, sparse): plain; L1 sparsity; L2; both; a strong L1 with
# a large alpha; beta = 0 (learning rate alpha / sqrt(n) from the first update) with a weak
# L1. `sparse`: L1 is strong enough here to hold some seen coordinates at exactly 0.
SETTINGS = [
    (0.1, 1.0, 0.0, 0.0, 0, False),
    (0.05, 1.0, 1.0, 0.0, 0, True),
    (0.2, 1.0, 0.0, 2.0, 0, False),
    (0.5, 0.1, 0.5, 1.0, 97, True),
    (1.0, 1.0, 5.0, 0.5, 0, True),
    (0.1, 0.0, 0.1, 0.0, 0, False),
]


def make_stream(seed=20130811):
    rnd = random.Random(seed)
    truth = [rnd.gauss(0, 1) for _ in range(D)]
    truth[0] = -1.0
    stream = []
    for _ in range(N):
        x = [0.0] * D
        x[0] = 1.0                                 # bias
        for i in range(3, 9):                      # sparse
            if rnd.random() < 0.125:
                x[i] = rnd.choice([1.0, rnd.uniform(0.1, 3.0)])
        for i in range(9, D):                      # dense, scales 0.1 .. 10
            x[i] = rnd.gauss(0, 1) * (0.1 if i % 3 == 0 else 10.0 if i == D - 1 else 1.0)
        y = int(rnd.random() < ref.sigmoid(sum(t * v for t, v in zip(truth, x)) / 3))
        u = rnd.random()
        c = 1.0 if u < 0.8 else 0.25 if u < 0.85 else 0.5 if u < 0.9 else 3.0 if u < 0.95 else 0.0
        stream.append((y, c, x))
    return stream


def write_csv(path, stream):
    with open(path, "w") as f:
        f.write("# y,weight,x_0..x_%d\n" % (D - 1))
        for y, c, x in stream:
            f.write("%d,%r,%s\n" % (y, c, ",".join(repr(v) for v in x)))


def run_driver(driver, path, alpha, beta, l1, l2, roundtrip):
    cmd = [driver, "--replay", path, "--alpha", repr(alpha), "--beta", repr(beta),
           "--l1", repr(l1), "--l2", repr(l2)]
    if roundtrip:
        cmd += ["--roundtrip", str(roundtrip)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split("\n")
    preds, weights, version = [], None, None
    for line in out:
        if line.startswith("w,"):
            weights = [float(v) for v in line[2:].split(",")]
        elif line.startswith("version="):
            version = int(line[8:])
        elif line:
            preds.append(float(line))
    return preds, weights, version


def replay(model, stream):
    return [model.learn(x, y, c) for y, c, x in stream]


def max_diff(a, b):
    return max(abs(u - v) for u, v in zip(a, b))


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        print("%s  %s" % ("ok  " if ok else "FAIL", what))
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", default=os.environ.get("TALLY_FTRL_DRIVER"),
                    help="bench_ftrl executable (default: $TALLY_FTRL_DRIVER)")
    args = ap.parse_args()
    if not args.driver:
        print("test_ftrl.py: no driver: set TALLY_FTRL_DRIVER or pass --driver", file=sys.stderr)
        return 2

    rv = ref.river_version()
    use_river = rv is not None and ref.river_has_ftrl()
    if rv is None:
        print("river is not installed: comparing with the paper script only")
    elif not use_river:
        print("river %s has no optim.FTRLProximal: comparing with the paper script only" % rv)
    else:
        print("river %s: optim.FTRLProximal (an optimizer; no FTRL model class) is compared "
              "too, driven by Algorithm 1" % rv)

    stream = make_stream()
    updates = sum(1 for _, c, _ in stream if c > 0)
    t = Checks()
    with tempfile.TemporaryDirectory(prefix="tally-ftrl-") as tmp:
        path = os.path.join(tmp, "stream.csv")
        write_csv(path, stream)
        for alpha, beta, l1, l2, roundtrip, sparse in SETTINGS:
            name = "alpha=%g beta=%g l1=%g l2=%g%s" % (
                alpha, beta, l1, l2, " roundtrip=%d" % roundtrip if roundtrip else "")
            got, got_w, got_version = run_driver(args.driver, path, alpha, beta, l1, l2,
                                                 roundtrip)
            t.check(len(got) == N and got_w is not None and len(got_w) == D,
                    "%s: driver printed %d predictions and the weights" % (name, len(got)))
            if len(got) != N or got_w is None or len(got_w) != D:
                continue
            t.check(got_version == updates,
                    "%s: version %s = %d updates (weight-0 examples are not updates)"
                    % (name, got_version, updates))
            t.check(all(0.0 <= p <= 1.0 and not math.isnan(p) for p in got),
                    "%s: predictions in [0, 1]" % name)

            refs = [("paper", ref.PaperFTRL(D, alpha, beta, l1, l2))]
            if use_river:
                refs.append(("river", ref.RiverFTRL(D, alpha, beta, l1, l2)))
            for rname, model in refs:
                want = replay(model, stream)
                want_w = model.weights()
                dp, dw = max_diff(got, want), max_diff(got_w, want_w)
                t.check(dp <= TOL, "%s: %d predictions vs %s: max |diff| %.3g"
                        % (name, N, rname, dp))
                t.check(dw <= TOL, "%s: final weights vs %s: max |diff| %.3g" % (name, rname, dw))
                zeros = [i for i in range(D) if got_w[i] == 0.0]
                t.check(zeros == [i for i in range(D) if want_w[i] == 0.0],
                        "%s: the same %d coordinates are exactly 0 in tally and %s"
                        % (name, len(zeros), rname))
                if sparse and rname == "paper":
                    # 1 and 2 are never seen; L1 must zero some coordinates that are.
                    t.check(any(i not in (1, 2) for i in zeros),
                            "%s: L1 zeroes seen coordinates too (zeros: %s)" % (name, zeros))

            if use_river:
                lr = replay(ref.RiverLogReg(D, alpha, beta, l1, l2), stream)
                lag = replay(ref.LaggedPaperFTRL(D, alpha, beta, l1, l2), stream)
                print("info  %s: River LogisticRegression(FTRLProximal) vs Algorithm 1: max "
                      "|diff| %.3g; vs Algorithm 1 with weights one update behind: %.3g"
                      % (name, max_diff(lr, got), max_diff(lr, lag)))

    print("%d passed, %d failed" % (t.passed, t.failed))
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
