#!/usr/bin/env python3
"""Reference FTRL-Proximal logistic regression, for checking model/ftrl.c.

PaperFTRL follows Algorithm 1 of McMahan et al., "Ad Click Prediction: a View from the
Trenches" (KDD 2013) line by line, in plain Python, with the formulas as printed there:

    for t = 1, 2, ...:
        receive x_t; I = {i : x_i != 0}
        for i in I:  w_i = 0                                             if |z_i| <= l1
                     w_i = -((beta + sqrt(n_i)) / alpha + l2)^-1 (z_i - sgn(z_i) l1)  otherwise
        p_t = sigmoid(x_t . w)
        for i in I:  g_i = (p_t - y_t) x_i
                     sigma_i = (sqrt(n_i + g_i^2) - sqrt(n_i)) / alpha
                     z_i += g_i - sigma_i w_i
                     n_i += g_i^2

plus an importance weight c scaling the gradient (g_i = c (p_t - y_t) x_i), as in the
paper's section 6.2 (subsampled negatives are learned with weight 1/r). A weight of 0 is
no update at all.

River (PyPI `river`, 0.26.1) has FTRL-Proximal as an optimizer, river.optim.FTRLProximal,
meant for river.linear_model.LogisticRegression; there is no FTRL-specific model class
(the old linear_model.FTRLProximal is gone). Two drivers use it:

  RiverFTRL        River's optimizer (its closed form for w and its z, n update) driven
                   exactly by Algorithm 1: each round first asks the optimizer for w_t with a
                   zero gradient (which computes w from z, n and leaves z, n unchanged),
                   predicts with it, then steps with the real gradient. This must agree
                   with PaperFTRL and with tally to rounding.
  RiverLogReg      LogisticRegression(optimizer=FTRLProximal(...)), the way River's docs use
                   it, with the intercept learning rate 0 and the bias as a feature. It is
                   NOT Algorithm 1: FTRLProximal.step() computes w from (z, n) before it
                   applies the gradient, so the model's weights are always one update
                   behind, and the gradient of round t is taken at the weights of round t-1.
                   LaggedPaperFTRL reproduces that, to show it is the only difference.

Usage as a module: PaperFTRL(d, alpha, beta, l1, l2).learn(x, y, weight) -> p (before
the update). As a script: ftrl_reference.py FILE alpha beta l1 l2 replays a CSV of
"y,weight,x_0,..." lines and prints one prediction per line, like `bench_ftrl --replay`.
"""

import math
import sys


def sigmoid(t):
    # Written so that exp() never overflows.
    if t >= 0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


def sgn(v):
    return (v > 0) - (v < 0)


class PaperFTRL:
    def __init__(self, d, alpha, beta, l1, l2):
        self.d, self.alpha, self.beta, self.l1, self.l2 = d, alpha, beta, l1, l2
        self.z = [0.0] * d
        self.n = [0.0] * d
        self.updates = 0

    def weight(self, i):
        z = self.z[i]
        if abs(z) <= self.l1:
            return 0.0
        return -1.0 / ((self.beta + math.sqrt(self.n[i])) / self.alpha + self.l2) * (
            z - sgn(z) * self.l1)

    def weights(self):
        return [self.weight(i) for i in range(self.d)]

    def learn(self, x, y, weight=1.0):
        active = [i for i in range(self.d) if x[i] != 0]
        w = {i: self.weight(i) for i in active}
        p = sigmoid(sum(x[i] * w[i] for i in active))
        if not weight > 0:
            return p
        for i in active:
            g = weight * (p - y) * x[i]
            sigma = (math.sqrt(self.n[i] + g * g) - math.sqrt(self.n[i])) / self.alpha
            self.z[i] += g - sigma * w[i]
            self.n[i] += g * g
        self.updates += 1
        return p


class LaggedPaperFTRL(PaperFTRL):
    """Algorithm 1 with the weights one update behind (what River's model class does)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.w_prev = [0.0] * self.d

    def learn(self, x, y, weight=1.0):
        p = sigmoid(sum(x[i] * self.w_prev[i] for i in range(self.d)))
        for i in range(self.d):   # River steps every feature of x, zeros included
            if abs(self.z[i]) > self.l1:   # else River keeps the old w_i
                self.w_prev[i] = self.weight(i)
            g = weight * (p - y) * x[i]
            sigma = (math.sqrt(self.n[i] + g * g) - math.sqrt(self.n[i])) / self.alpha
            self.z[i] += g - sigma * self.w_prev[i]
            self.n[i] += g * g
        return p


def river_version():
    """River's version string, or None when it is not installed."""
    try:
        import river
    except ImportError:
        return None
    return river.__version__


def river_has_ftrl():
    try:
        from river import optim
    except ImportError:
        return False
    return hasattr(optim, "FTRLProximal")


class RiverFTRL:
    """river.optim.FTRLProximal driven by Algorithm 1 (see the module docstring)."""

    def __init__(self, d, alpha, beta, l1, l2):
        from river import optim
        self.d = d
        self.opt = optim.FTRLProximal(alpha=alpha, beta=beta, l1=l1, l2=l2)

    def current_weights(self, active):
        # A zero gradient: River sets w_i from (z_i, n_i) where |z_i| > l1 (and leaves the
        # 0.0 we pass elsewhere), then adds 0 - 0 * w_i to z_i and 0 to n_i.
        w = {i: 0.0 for i in active}
        self.opt.step(w, {i: 0.0 for i in active})
        return w

    def weights(self):
        w = self.current_weights(range(self.d))
        return [w[i] for i in range(self.d)]

    def learn(self, x, y, weight=1.0):
        active = [i for i in range(self.d) if x[i] != 0]
        w = self.current_weights(active)
        p = sigmoid(sum(x[i] * w[i] for i in active))
        if weight > 0:
            g = {i: weight * (p - y) * x[i] for i in active}
            self.opt.step({i: 0.0 for i in active}, g)
        return p


class RiverLogReg:
    """River's LogisticRegression with its FTRL-Proximal optimizer (weights lag, see above)."""

    def __init__(self, d, alpha, beta, l1, l2):
        from river import linear_model, optim
        self.d = d
        self.model = linear_model.LogisticRegression(
            optimizer=optim.FTRLProximal(alpha=alpha, beta=beta, l1=l1, l2=l2),
            l2=0.0, intercept_lr=0.0)

    def learn(self, x, y, weight=1.0):
        xd = {i: x[i] for i in range(self.d)}
        p = self.model.predict_proba_one(xd)[True]
        self.model.learn_one(xd, bool(y), w=weight)
        return p


def read_stream(path):
    """[(y, weight, [x...])] from a CSV of "y,weight,x_0,..." lines ('#' lines skipped)."""
    out = []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            v = line.strip().split(",")
            out.append((int(v[0]), float(v[1]), [float(t) for t in v[2:]]))
    return out


def main(argv):
    if len(argv) != 6:
        print("usage: ftrl_reference.py FILE alpha beta l1 l2", file=sys.stderr)
        return 2
    stream = read_stream(argv[1])
    alpha, beta, l1, l2 = (float(a) for a in argv[2:6])
    m = PaperFTRL(len(stream[0][2]), alpha, beta, l1, l2)
    for y, c, x in stream:
        print(repr(m.learn(x, y, c)))
    print("w," + ",".join(repr(v) for v in m.weights()))
    print("version=%d" % m.updates)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
