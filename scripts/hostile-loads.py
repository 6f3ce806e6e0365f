#!/usr/bin/env python3
"""Replays the hostile loads of the hardening issue against `svcplane dev` and prints, per load,
what the server answered and what it cost: CPU seconds of the server process and its resident
memory (VmRSS now, VmHWM peak) read from /proc.

Usage: scripts/hostile-loads.py [PATH-TO-SVCPLANE-BINARY]   (default: target/release/svcplane)

Everything runs on loopback against a server this script starts in a temporary directory and
stops at the end; every loop is bounded in count and time. The figures are recorded in
BENCHMARKS.md ("Hostile loads"), next to the figures the issue measured before the fixes.
"""
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, workdir):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "dev", "--listen", f"127.0.0.1:{self.port}", "--no-examples",
             "--no-controllers", "--no-webhook", "--no-node-agents",
             "--kubeconfig-out", "dev.kubeconfig", "--work-dir", "work"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("svcplane dev did not become healthy within 60 s")

    def conn(self, timeout=120):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                           timeout=timeout)

    def request(self, method, path, body=None, ctype="application/json", timeout=120):
        c = self.conn(timeout)
        headers = {"Content-Type": ctype} if body is not None else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def usage(self):
        """(cpu seconds, rss MiB, peak rss MiB) of the server process."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        rss = hwm = 0
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
        return cpu, rss, hwm

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


CM = "/api/v1/namespaces/default/configmaps"


def configmap(name, size):
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                       "data": {"blob": "x" * size}})


def measure(server, title, load):
    before = server.usage()
    started = time.time()
    outcome = load(server)
    wall = time.time() - started
    after = server.usage()
    print(f"| {title} | {outcome} | {wall:.1f} s | {after[0] - before[0]:.1f} s | "
          f"{after[1]:.0f} MiB | {after[2]:.0f} MiB |", flush=True)


def deep_yaml(server):
    """Two 100,000-level YAML bodies at once, with /healthz polled meanwhile."""
    depth = 100_000
    body = ("a: " + "[" * depth + "]" * depth + "\n").encode()
    answers, worst = [], [0.0]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            t = time.time()
            try:
                server.request("GET", "/healthz", timeout=60)
            except OSError:
                pass
            worst[0] = max(worst[0], time.time() - t)
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    posts = [threading.Thread(target=lambda: answers.append(
        server.request("POST", CM, body, "application/yaml")[0])) for _ in range(2)]
    for t in posts:
        t.start()
    for t in posts:
        t.join()
    stop.set()
    poller.join()
    return f"answers {sorted(answers)}, slowest /healthz {worst[0] * 1000:.0f} ms"


def patch_amplification(server):
    """20 JSON Patch copies of /metadata into itself (the issue's 1.2 KB body)."""
    server.request("POST", CM, configmap("amplify", 16))
    ops = [{"op": "copy", "from": "/metadata", "path": f"/metadata/annotations/a{i}"}
           for i in range(20)]
    ops.insert(0, {"op": "add", "path": "/metadata/annotations", "value": {}})
    status, data = server.request("PATCH", CM + "/amplify", json.dumps(ops),
                                  "application/json-patch+json")
    reason = json.loads(data).get("reason", "") if data.startswith(b"{") else ""
    return f"{status} {reason}".strip()


def slow_watchers(server):
    """20 watches that never read, then 300 updates of a 100 KB ConfigMap."""
    server.request("POST", CM, configmap("watched", 100_000))
    sockets = []
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", server.port))
        s = server.ctx.wrap_socket(raw)
        s.sendall(f"GET {CM}?watch=true HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sockets.append(s)
    failed = 0
    for i in range(300):
        patch = json.dumps({"data": {"blob": str(i % 10) * 100_000}})
        status, _ = server.request("PATCH", CM + "/watched", patch,
                                   "application/merge-patch+json")
        failed += status != 200
    for s in sockets:
        s.close()
    return f"{300 - failed}/300 updates acknowledged"


def large_history(server):
    """1,000 updates of a 900 KB ConfigMap, then its deletion."""
    server.request("POST", CM, configmap("big", 900_000))
    ok = 0
    for i in range(1000):
        patch = json.dumps({"data": {"blob": str(i % 10) * 900_000}})
        ok += server.request("PATCH", CM + "/big", patch, "application/merge-patch+json")[0] == 200
    server.request("DELETE", CM + "/big")
    return f"{ok}/1000 updates acknowledged, object deleted"


def stalled_handshakes(server):
    """200 connections that never start TLS; how many the server still holds after 15 s."""
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
    time.sleep(15)
    still_open = 0
    for s in held:
        s.setblocking(False)
        try:
            still_open += s.recv(1) != b""
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
        s.close()
    return f"{still_open} of 200 still held after 15 s"


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/svcplane")
    with tempfile.TemporaryDirectory() as workdir:
        server = Server(binary, workdir)
        try:
            cpu, rss, hwm = server.usage()
            print(f"svcplane dev idle: {rss:.0f} MiB RSS\n")
            print("| load | answer | wall | server CPU | RSS after | peak RSS |")
            print("|---|---|---|---|---|---|")
            measure(server, "2 × YAML nested 100,000 deep", deep_yaml)
            measure(server, "JSON Patch: 20 copies of /metadata", patch_amplification)
            measure(server, "20 watches never read + 300 × 100 KB updates", slow_watchers)
            measure(server, "1,000 × 900 KB updates, then delete", large_history)
            measure(server, "200 connections never starting TLS", stalled_handshakes)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
