#!/usr/bin/env python3
"""bench/crowding.py - one client against the others, on each server given.

Usage: crowding.py NAME=BINARY [NAME=BINARY ...]
  e.g. crowding.py nats-server=/usr/sbin/nats-server kcobrad=build/src/cmd/kcobrad

For each server, started fresh on free 127.0.0.1 ports with its defaults
(max_pending 64 MiB, write_deadline 10 s), two workloads:

  subs     one raw connection pipelines 150,000 "SUB crowd.<i> <i>" and a PING:
           seconds until its PONG (the server's work), the worst connect +
           PING/PONG of a bystander probing meanwhile, then the same probe
           right after that connection closes (its 150,000 removals).
  trickle  a raw publisher sends 1 KiB messages on "trickle" as fast as it can,
           a raw fast subscriber reads them as fast as it can, and a raw
           subscriber with a 4 KiB receive buffer reads 1,600 bytes every
           100 ms (16 KB/s). For TRICKLE_SECONDS: when the server counted a
           slow consumer (/varz), and the fast subscriber's MB/s per window.
  submit   (kcobrad only: a server named kcobrad*, which runs the persister)
           a raw subscriber on kc.req.> reading 16 KB/s, put 40 MiB behind by
           a burst on kc.req.fill; meanwhile one client submits 256-byte
           durable requests to kc.submit.bench one at a time (each waits for
           its acknowledgement): submits/s per window of TRICKLE_SECONDS.

CROWDING_WORKLOADS (default "subs,trickle,submit") picks workloads.
Every wait is bounded; a server that does not answer a probe within
PROBE_TIMEOUT_S counts as that timeout. Python's own speed caps the
throughput figures (about 1 GB/s here): compare servers within a run.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SUB_COUNT = 150_000
PROBE_TIMEOUT_S = 30.0
SUBS_BOUND_S = 120.0
TRICKLE_SECONDS = int(os.environ.get("TRICKLE_SECONDS", "25"))
TRICKLE_RCVBUF = 4096
TRICKLE_READ_BYTES = 1600
TRICKLE_INTERVAL_S = 0.1
PAYLOAD_BYTES = 1024
WINDOWS = [(0, 5), (5, 10), (10, 15), (15, TRICKLE_SECONDS)]
START_TIMEOUT_S = 10.0
SUBMIT_WARMUP_TRIES = 10
CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\n'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary):
        self.port, self.http_port = free_port(), free_port()
        self.directory = tempfile.mkdtemp(prefix="crowding-")
        self.log = open(os.path.join(self.directory, "server.log"), "wb")
        self.process = subprocess.Popen(
            [os.path.abspath(binary), "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.http_port)],
            cwd=self.directory, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{binary} did not start")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def slow_consumers(self):
        url = f"http://127.0.0.1:{self.http_port}/varz"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer).get("slow_consumers", 0)


def raw(port, rcvbuf=0, timeout=PROBE_TIMEOUT_S):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def read_until(s, token, limit_s):
    deadline, seen = time.monotonic() + limit_s, b""
    while token not in seen:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        seen = seen[-64:] + chunk
    return seen


def probe_s(port):
    """A fresh client: connect, INFO, CONNECT, PING, PONG; seconds."""
    started = time.monotonic()
    try:
        s = raw(port)
        read_until(s, b"\r\n", PROBE_TIMEOUT_S)
        s.sendall(CONNECT + b"PING\r\n")
        read_until(s, b"PONG\r\n", PROBE_TIMEOUT_S)
        s.close()
    except (OSError, TimeoutError, ConnectionError):
        return PROBE_TIMEOUT_S
    return time.monotonic() - started


def bench_subs(server):
    lines = b"".join(b"SUB crowd.%d %d\r\n" % (i, i) for i in range(1, SUB_COUNT + 1))
    crowd = raw(server.port, timeout=SUBS_BOUND_S)
    read_until(crowd, b"\r\n", PROBE_TIMEOUT_S)
    crowd.sendall(CONNECT + b"PING\r\n")
    read_until(crowd, b"PONG\r\n", PROBE_TIMEOUT_S)
    done = threading.Event()
    probes = []

    def probing():
        while not done.is_set():
            probes.append(probe_s(server.port))
            time.sleep(0.1)

    prober = threading.Thread(target=probing)
    started = time.monotonic()
    prober.start()
    try:
        crowd.sendall(lines + b"PING\r\n")
        read_until(crowd, b"PONG\r\n", SUBS_BOUND_S)
        subs_s = time.monotonic() - started
    except (OSError, TimeoutError, ConnectionError):
        subs_s = float("inf")
    done.set()
    prober.join()
    crowd.close()
    after_close_s = probe_s(server.port)
    return {"subs_s": subs_s, "probe_max_s": max(probes) if probes else 0.0,
            "probe_count": len(probes), "after_close_probe_s": after_close_s}


def bench_trickle(server):
    stop = threading.Event()
    started = time.monotonic()
    fast_bytes = [0] * (TRICKLE_SECONDS + 1)
    outcome = {"fast_closed_at_s": None, "cut_at_s": None, "trickle_read": 0}

    def subscriber(rcvbuf):
        s = raw(server.port, rcvbuf=rcvbuf)
        read_until(s, b"\r\n", PROBE_TIMEOUT_S)
        s.sendall(CONNECT + b"SUB trickle 1\r\nPING\r\n")
        read_until(s, b"PONG\r\n", PROBE_TIMEOUT_S)
        return s

    fast, trickler = subscriber(0), subscriber(TRICKLE_RCVBUF)
    publisher = raw(server.port)
    read_until(publisher, b"\r\n", PROBE_TIMEOUT_S)
    publisher.sendall(CONNECT)
    message = b"PUB trickle %d\r\n" % PAYLOAD_BYTES + b"t" * PAYLOAD_BYTES + b"\r\n"
    block = message * (1024 * 1024 // len(message))

    def publish():
        publisher.settimeout(0.5)
        while not stop.is_set():
            try:
                publisher.sendall(block)
            except socket.timeout:
                continue
            except OSError:
                return

    def read_fast():
        fast.settimeout(0.5)
        buffer = bytearray(1 << 20)
        while not stop.is_set():
            try:
                n = fast.recv_into(buffer)
            except socket.timeout:
                continue
            except OSError:
                n = 0
            if n == 0:
                outcome["fast_closed_at_s"] = time.monotonic() - started
                return
            second = int(time.monotonic() - started)
            fast_bytes[min(second, TRICKLE_SECONDS)] += n

    def trickle():
        trickler.setblocking(False)
        while not stop.is_set():
            time.sleep(TRICKLE_INTERVAL_S)
            try:
                n = len(trickler.recv(TRICKLE_READ_BYTES))
            except BlockingIOError:
                continue
            except OSError:
                return
            if n == 0:
                return
            outcome["trickle_read"] += n

    threads = [threading.Thread(target=f) for f in (publish, read_fast, trickle)]
    for thread in threads:
        thread.start()
    while time.monotonic() - started < TRICKLE_SECONDS:
        time.sleep(0.5)
        if outcome["cut_at_s"] is None and server.slow_consumers() > 0:
            outcome["cut_at_s"] = round(time.monotonic() - started, 1)
    stop.set()
    for thread in threads:
        thread.join(5)
    for s in (fast, trickler, publisher):
        s.close()
    for low, high in WINDOWS:
        outcome[f"fast_MBps_{low}-{high}s"] = round(
            sum(fast_bytes[low:high]) / (high - low) / 1e6, 1)
    return outcome


class Reader:
    """Messages from a raw socket: MSG lines and their payloads; PINGs answered."""

    def __init__(self, s):
        self.s, self.buffer = s, b""

    def next_message(self, limit_s):
        deadline = time.monotonic() + limit_s
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = self.buffer[:end]
                if line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                    size = int(line.split()[-1])
                    if len(self.buffer) >= end + 2 + size + 2:
                        self.buffer = self.buffer[end + 2 + size + 2:]
                        return line
                else:
                    self.buffer = self.buffer[end + 2:]
                    if line == b"PING":
                        self.s.sendall(b"PONG\r\n")
                    continue
            if time.monotonic() > deadline:
                raise TimeoutError
            self.s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk


def bench_submit(server):
    stop = threading.Event()
    submitter = raw(server.port)
    read_until(submitter, b"\r\n", PROBE_TIMEOUT_S)
    submitter.sendall(CONNECT + b"SUB _INBOX.bench 1\r\nPING\r\n")
    read_until(submitter, b"PONG\r\n", PROBE_TIMEOUT_S)
    messages = Reader(submitter)
    request = b"PUB kc.submit.bench _INBOX.bench 256\r\n" + b"r" * 256 + b"\r\n"
    for attempt in range(SUBMIT_WARMUP_TRIES):  # until the persister answers
        submitter.sendall(request)
        try:
            messages.next_message(1.0)
            break
        except TimeoutError:
            continue
    trickler = raw(server.port, rcvbuf=TRICKLE_RCVBUF)
    read_until(trickler, b"\r\n", PROBE_TIMEOUT_S)
    trickler.sendall(CONNECT + b"SUB kc.req.> 1\r\nPING\r\n")
    read_until(trickler, b"PONG\r\n", PROBE_TIMEOUT_S)

    def trickle():
        trickler.setblocking(False)
        while not stop.is_set():
            time.sleep(TRICKLE_INTERVAL_S)
            try:
                if not trickler.recv(TRICKLE_READ_BYTES):
                    return
            except BlockingIOError:
                continue
            except OSError:
                return

    reader = threading.Thread(target=trickle)
    reader.start()
    filler = raw(server.port)
    read_until(filler, b"\r\n", PROBE_TIMEOUT_S)
    chunk = 1 << 20
    filler.sendall(CONNECT + (b"PUB kc.req.fill %d\r\n" % chunk + b"f" * chunk + b"\r\n") * 40)
    counts = [0] * (TRICKLE_SECONDS + 1)
    started = time.monotonic()
    outcome = {}
    while time.monotonic() - started < TRICKLE_SECONDS:
        submitter.sendall(request)
        try:
            messages.next_message(TRICKLE_SECONDS)
        except (TimeoutError, OSError, ConnectionError):
            outcome["submit_error"] = True
            break
        counts[min(int(time.monotonic() - started), TRICKLE_SECONDS)] += 1
    stop.set()
    reader.join(5)
    outcome["trickler_cut"] = server.slow_consumers() > 0
    for s in (trickler, filler, submitter):
        s.close()
    for low, high in WINDOWS:
        outcome[f"submits_per_s_{low}-{high}s"] = round(sum(counts[low:high]) / (high - low))
    return outcome


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    results = {}
    for argument in sys.argv[1:]:
        name, binary = argument.split("=", 1)
        wanted = os.environ.get("CROWDING_WORKLOADS", "subs,trickle,submit").split(",")
        workloads = [bench_subs, bench_trickle]
        if name.startswith("kcobrad"):
            workloads.append(bench_submit)
        workloads = [w for w in workloads if w.__name__[len("bench_"):] in wanted]
        for workload in workloads:
            server = Server(binary)
            try:
                figures = workload(server)
            finally:
                server.stop()
            results.setdefault(name, {}).update(figures)
            print(name, workload.__name__, json.dumps(figures), flush=True)
    keys = sorted({k for r in results.values() for k in r})
    print(f"\n{'figure':28}" + "".join(f"{name:>16}" for name in results))
    for key in keys:
        row = "".join(f"{str(round(r.get(key), 2) if isinstance(r.get(key), float) else r.get(key)):>16}"
                      for r in results.values())
        print(f"{key:28}{row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
