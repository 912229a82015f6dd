"""Load on `backprop serve`: pages following a training run while others draw digits.

    python3 bench/lab_load.py BACKPROP MODEL [--followers 50] [--rate 200] [--seconds 30]
                              [--out FILE.json]

Starts `BACKPROP serve --model MODEL`, a long training run from the lab, FOLLOWERS pages on
its event stream (a fifth of them leave mid-stream and come back every two seconds), and RATE
drawings a second for SECONDS: POST /api/predict?layers with a PNG, as the draw view sends
them, on a fixed schedule (open loop: each request's latency counts from the moment it was
due, so a server that falls behind shows it). Then, for SECONDS / 3, as many predictions as 8
clients can get answered (the capacity). Prints, and writes to FILE.json, the requests a
second, p50 / p99 / max latency, the server's resident memory (start, largest, end) and its
threads; exits non-zero when a request failed or went unanswered, a follower heard no loss,
or the server died.
Uses the standard library alone.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("backprop")
parser.add_argument("model")
parser.add_argument("--followers", type=int, default=50)
parser.add_argument("--rate", type=float, default=200)
parser.add_argument("--seconds", type=float, default=30)
parser.add_argument("--out")
args = parser.parse_args()

here = os.path.dirname(os.path.abspath(__file__))
picture = open(os.path.join(here, "..", "tests", "corpus", "image", "digit.png"), "rb").read()

server = subprocess.Popen([args.backprop, "serve", "--addr", "127.0.0.1:0", "--model", args.model],
                          stdout=subprocess.PIPE, text=True)
host, port = server.stdout.readline().split("http://")[1].split("/")[0].split(":")
port = int(port)


def proc(field):
    """A field of the server's /proc status, such as VmRSS (kB) or Threads."""
    with open(f"/proc/{server.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def call(method, path, body=None, kind=None):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request(method, path, body=body, headers={"Content-Type": kind} if kind else {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


stop = threading.Event()
heard = [0] * args.followers  # loss events each follower heard
left = [0] * args.followers


def follow(k):
    """A page on the event stream; every fifth one leaves after two seconds and 20 events (the
    run's history comes first) and comes back."""
    while not stop.is_set():
        since = time.perf_counter()
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.request("GET", "/api/train/events")
        stream = conn.getresponse()
        count = 0
        while not stop.is_set():
            line = stream.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                heard[k] += b'"type":"loss"' in line
                count += 1
                if k % 5 == 0 and count >= 20 and time.perf_counter() - since > 2:
                    left[k] += 1
                    break
        stream.close()  # mid-stream, without a word


latencies, failures = [], []
lock = threading.Lock()


def draw_on_schedule(start, total, next_index):
    while True:
        with lock:
            i = next_index[0]
            next_index[0] += 1
        if i >= total:
            return
        due = start + i / args.rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        try:
            status, _ = call("POST", "/api/predict?layers", picture, "image/png")
        except OSError as e:
            status = repr(e)
        took = time.perf_counter() - due
        with lock:
            latencies.append(took)
            if status != 200:
                failures.append(status)


def draw_flat_out(until, counts, k):
    while time.perf_counter() < until:
        try:
            status, _ = call("POST", "/api/predict?layers", picture, "image/png")
        except OSError as e:
            status = repr(e)
        counts[k] += 1
        if status != 200:
            with lock:
                failures.append(status)


memory = []


def watch():
    while not stop.is_set():
        memory.append((proc("VmRSS"), proc("Threads")))
        time.sleep(0.25)


try:
    rss_start = proc("VmRSS")
    status, body = call("POST", "/api/train", json.dumps({"iters": 200_000, "eval-every": 100_000}),
                        "application/json")
    assert status == 200, body
    watcher = threading.Thread(target=watch)
    watcher.start()
    followers = [threading.Thread(target=follow, args=(k,)) for k in range(args.followers)]
    for f in followers:
        f.start()

    total = int(args.rate * args.seconds)
    start = time.perf_counter() + 0.5
    next_index = [0]
    drawers = [threading.Thread(target=draw_on_schedule, args=(start, total, next_index)) for _ in range(32)]
    for d in drawers:
        d.start()
    for d in drawers:
        d.join()
    scheduled_s = time.perf_counter() - start

    counts = [0] * 8
    flat_s = args.seconds / 3
    until = time.perf_counter() + flat_s
    flat = [threading.Thread(target=draw_flat_out, args=(until, counts, k)) for k in range(8)]
    for d in flat:
        d.start()
    for d in flat:
        d.join()

    status, body = call("GET", "/api/train")
    run = json.loads(body)
    stop.set()
    call("POST", "/api/train/stop")
    for f in followers:
        f.join()
    watcher.join()
    alive = server.poll() is None

    ms = sorted(1e3 * t for t in latencies)
    result = {
        "followers": args.followers,
        "followers_left_and_came_back": sum(left),
        "loss_events_heard_least": min(heard),
        "rate_asked": args.rate,
        "seconds": args.seconds,
        "requests": len(ms),
        "rate_kept": round(len(ms) / scheduled_s, 1),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 2),
        "max_ms": round(ms[-1], 2),
        "capacity_per_s": round(sum(counts) / flat_s, 1),
        "failures": len(failures),
        "rss_start_mb": round(rss_start / 1024, 1),
        "rss_max_mb": round(max(m for m, _ in memory) / 1024, 1),
        "rss_end_mb": round(memory[-1][0] / 1024, 1),
        "threads_max": max(t for _, t in memory),
        "server_followers_at_end": run["followers"],
        "server_alive": alive,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    ok = alive and not failures and min(heard) > 0 and len(ms) == total
    sys.exit(0 if ok else 1)
finally:
    stop.set()
    server.kill()
