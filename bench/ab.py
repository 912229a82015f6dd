#!/usr/bin/env python3
"""Before against after: two backprop binaries on the same grid cells, alternating, so that the
host's drift falls on both alike. Prints a Markdown table of medians. Standard library only.

    python3 bench/ab.py --before OLD --after NEW --cells ID,... [--rounds 4] [--reps 3]
                        [--threads 2] [--out bench/results/NAME.jsonl]
    python3 bench/ab.py --report FILE.jsonl      # re-renders the table of a saved run

Each round runs, for every cell, `backprop bench --cell ID --reps R --threads T --json` with
the before binary, then with the after one. Every repetition's JSON line, tagged with its
build label and round, is appended to --out. Build the two binaries first, e.g.
`git stash; cargo build --release; cp target/release/backprop /tmp/before; git stash pop`.
"""
import argparse
import json
import statistics
import subprocess
import sys


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", help="the binary before the change")
    ap.add_argument("--after", help="the binary after the change")
    ap.add_argument("--labels", default="before,after", help="the two builds' names in the table")
    ap.add_argument("--cells", default="", help="comma-separated cell ids (see bench/grid.json)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per process")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="JSON-lines file to append to")
    ap.add_argument("--report", metavar="FILE.jsonl", help="only print the table of a saved run")
    args = ap.parse_args()
    args.labels = args.labels.split(",")
    args.cells = [c for c in args.cells.split(",") if c]
    if not args.report and not (args.before and args.after and args.cells):
        ap.error("give --before, --after and --cells (or --report FILE)")
    if len(args.labels) != 2:
        ap.error("--labels takes two names, e.g. 521d548,4ea1b77")
    return args


def run(binary, label, cell, round_, args):
    cmd = [binary, "bench", "--cell", cell, "--reps", str(args.reps),
           "--threads", str(args.threads), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    lines = [json.loads(l) for l in done.stdout.splitlines() if l.startswith("{")]
    return [{"build": label, "round": round_, **line} for line in lines if "ms_per_step" in line
            or "images_per_s" in line]


def value(line):
    return line["ms_per_step"] if "ms_per_step" in line else line["images_per_s"]


def report(lines, labels):
    print(f"| cell | {labels[0]} | {labels[1]} | {labels[1]} / {labels[0]} |")
    print("|---|---|---|---|")
    cells = list(dict.fromkeys(l["cell"] for l in lines))
    for cell in cells:
        stats = []
        for label in labels:
            vs = [value(l) for l in lines if l["cell"] == cell and l["build"] == label]
            stats.append((statistics.median(vs), min(vs), max(vs), len(vs)) if vs else None)
        if None in stats:
            continue
        unit = "images/s" if cell.startswith("eval/") else "ms per step"
        shown = [f"{m:.3g} [{lo:.3g}–{hi:.3g}]" for m, lo, hi, _ in stats]
        print(f"| {cell} ({unit}) | {shown[0]} | {shown[1]} | {stats[1][0] / stats[0][0]:.3f} |")
    counts = sorted({s for cell in cells for s in
                     [sum(1 for l in lines if l["cell"] == cell and l["build"] == labels[1])]})
    print(f"\nmedian [min–max] of {', '.join(map(str, counts))} repetitions per build and cell; "
          "eval cells: higher is better.")


def main():
    args = parse_args()
    if args.report:
        with open(args.report) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        labels = list(dict.fromkeys(l["build"] for l in lines))
        return report(lines, labels[:2])
    lines = []
    for round_ in range(1, args.rounds + 1):
        for cell in args.cells:
            for binary, label in zip([args.before, args.after], args.labels):
                new = run(binary, label, cell, round_, args)
                lines += new
                if args.out:
                    with open(args.out, "a") as f:
                        f.writelines(json.dumps(l) + "\n" for l in new)
                ms = statistics.median(value(l) for l in new)
                print(f"round {round_} {cell} {label}: {ms:.4g}", file=sys.stderr)
    report(lines, args.labels)


if __name__ == "__main__":
    main()
