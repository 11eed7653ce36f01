"""What the model benchmarks share: the Taobao journeys of ../shared/data (as the file has
them, or sorted by time as a stream delivers them) and the AUC of scores against labels."""
import csv
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOURNEYS = os.path.join(ROOT, "..", "shared", "data", "taobao", "user_behavior_journeys.csv")


def journeys_by_time(d):
    """The journeys file sorted by time, written into directory d: its path, or None (said
    on stderr) when the data is absent."""
    if not os.path.exists(JOURNEYS):
        import sys
        print("skipped the Taobao journeys: %s is absent" % JOURNEYS, file=sys.stderr)
        return None
    with open(JOURNEYS, newline="") as fh:
        rows = list(csv.reader(fh))
    path = os.path.join(d, "journeys_by_time.csv")
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(sorted(rows, key=lambda r: int(r[4])))
    return path


def setting_args(doc):
    """Parses a command line of -X key=value settings (the script's usage from doc) into
    tally's arguments for them."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("-X", action="append", default=[], metavar="KEY=VALUE")
    return [y for x in ap.parse_args().X for y in ("-X", x)]


def auc(ps, ys):
    """The probability that a positive scores above a negative (ties count half)."""
    pairs = sorted(zip(ps, ys))
    pos = sum(ys)
    neg = len(ys) - pos
    if not pos or not neg:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):   # average ranks over ties
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        rank_sum += (i + 1 + j) / 2.0 * sum(y for _, y in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)
