#!/usr/bin/env python3
"""Helpers of tests/faults/run.sh (standard library only, Python 3.8+).

  free-port                          print a free TCP port on 127.0.0.1
  probe BASE OUT STOPFILE CLIENT SECRET
                                     timed requests until STOPFILE exists: token requests (4
                                     threads), a page that reads the database, and /readyz; one
                                     JSON line per answer in OUT
  outage OUT STOP_BEGIN STOPPED STARTING BOUND RECOVERY
                                     judges the probe log of scenario 1 (times are Unix seconds)
  inflight BASE N CLIENT SECRET OUT SENTFILE
                                     sends N token requests at once on fresh connections, touches
                                     SENTFILE once all are sent, then reads every answer in full
  smtp-sink PORT DIR                 a minimal SMTP server writing each message to DIR
"""

import asyncio
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

# A well-formed invitation token that matches no link: the page reads the database, answers 404.
PAGE = "/invite/" + "A" * 43


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def token_body(client_id, secret):
    return urllib.parse.urlencode({
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "resource": "match-connect-production",
    })


def one_request(host, port, method, path, body=None, timeout=60):
    """(status or None, error text or None, JSON error code or None, seconds, start time)."""
    t0 = time.time()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()  # raises IncompleteRead when cut off
        code = None
        if resp.getheader("Content-Type", "").startswith("application/json"):
            try:
                code = json.loads(data).get("error")
            except ValueError:
                code = "unparsable-json"
        return resp.status, None, code, time.time() - t0, t0
    except Exception as e:  # noqa: BLE001 - every transport failure is a finding
        return None, f"{type(e).__name__}: {e}", None, time.time() - t0, t0
    finally:
        conn.close()


def probe(base, out, stopfile, client_id, secret):
    u = urllib.parse.urlsplit(base)
    host, port = u.hostname, u.port
    lock = threading.Lock()
    f = open(out, "a", buffering=1)

    def loop(kind, method, path, body):
        while not os.path.exists(stopfile):
            status, err, code, dt, t0 = one_request(host, port, method, path, body)
            with lock:
                f.write(json.dumps({"kind": kind, "t0": t0, "dt": dt, "status": status, "error": err, "code": code}) + "\n")
            time.sleep(0.05)

    body = token_body(client_id, secret)
    threads = [threading.Thread(target=loop, args=("token", "POST", "/oauth2/token", body)) for _ in range(4)]
    threads.append(threading.Thread(target=loop, args=("page", "GET", PAGE, None)))
    threads.append(threading.Thread(target=loop, args=("readyz", "GET", "/readyz", None)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def outage(out, stop_begin, stopped, starting, bound, recovery_bound):
    """Scenario 1's verdict (Unix seconds): STOP_BEGIN and STOPPED bracket pg_ctl stop; STARTING:
    pg_ctl start was run (the cluster may answer before pg_ctl start -w returns)."""
    stop_begin, stopped, starting = float(stop_begin), float(stopped), float(starting)
    bound, recovery_bound = float(bound), float(recovery_bound)
    rows = [json.loads(line) for line in open(out)]
    failures, notes = [], []
    healthy = {"token": 200, "page": 404, "readyz": 200}
    if not rows:
        failures.append("the probe recorded nothing")
    for r in rows:
        at = f"{r['kind']} started {r['t0'] - stop_begin:+.2f}s from the stop"
        in_flight_at_stop = r["t0"] < stopped and r["t0"] + r["dt"] >= stop_begin
        if r["status"] is None:
            failures.append(f"{at}: no HTTP answer ({r['error']}) after {r['dt']:.2f}s")
        elif r["status"] == 500 and r["kind"] == "page" and in_flight_at_stop:
            notes.append(f"{at}: 500 (a page query cut by the stop: see check 1b)")
        elif r["status"] not in (healthy[r["kind"]], 503):
            failures.append(f"{at}: status {r['status']}")
        elif r["kind"] == "token" and r["status"] == 503 and r["code"] != "temporarily_unavailable":
            failures.append(f"{at}: 503 without error=temporarily_unavailable (got {r['code']!r})")
        if r["dt"] > bound:
            failures.append(f"{at}: answered after {r['dt']:.2f}s > {bound:.0f}s")
    # Every request started and answered while the cluster was down must be a 503.
    down = [r for r in rows if r["t0"] >= stopped and r["t0"] + r["dt"] <= starting]
    for kind in ("token", "page", "readyz"):
        k = [r for r in down if r["kind"] == kind]
        if not k:
            failures.append(f"no {kind} request completed during the outage")
        bad = [r for r in k if r["status"] != 503]
        if bad:
            failures.append(f"{len(bad)} of {len(k)} {kind} requests during the outage were not 503: "
                            + ", ".join(str(r["status"]) for r in bad[:5]))
    lat = sorted(r["dt"] for r in rows if r["status"] == 503)
    # Recovery: the first 200 token answer to a request started after pg_ctl start was run, and
    # every token request started after that answer is 200 as well.
    after = sorted((r for r in rows if r["kind"] == "token" and r["t0"] >= starting), key=lambda r: r["t0"])
    ok = [r for r in after if r["status"] == 200]
    recovered = None
    if ok:
        recovered = ok[0]["t0"] + ok[0]["dt"]
        later = [r for r in after if r["t0"] >= recovered and r["status"] != 200]
        if later:
            failures.append(f"{len(later)} token requests failed again after recovery")
        if recovered - starting > recovery_bound:
            failures.append(f"recovered {recovered - starting:.2f}s after the restart > {recovery_bound:.0f}s")
    else:
        failures.append(f"no token request succeeded after the restart ({len(after)} tried)")
    ready_after = [r for r in rows if r["kind"] == "readyz" and r["t0"] >= starting and r["status"] == 200]
    if not ready_after:
        failures.append("/readyz never answered 200 after the restart")
    counts = {}
    for r in rows:
        key = f"{r['kind']}:{r['status']}"
        counts[key] = counts.get(key, 0) + 1
    print(f"probe answers {json.dumps(counts, sort_keys=True)}")
    print(f"started and answered while down: {len(down)} (" + ", ".join(
        f"{k} {sum(1 for r in down if r['kind'] == k and r['status'] == 503)}/{sum(1 for r in down if r['kind'] == k)} 503"
        for k in ("token", "page", "readyz")) + ")")
    if lat:
        print(f"503 answer times: min {lat[0]:.2f}s, median {lat[len(lat) // 2]:.2f}s, max {lat[-1]:.2f}s (bound {bound:.0f}s); "
              f"slowest answer of any kind {max(r['dt'] for r in rows):.2f}s")
    if recovered:
        print(f"recovery: first token 200 {recovered - starting:.2f}s after pg_ctl start was run (bound {recovery_bound:.0f}s)")
    for line in notes[:5]:
        print(f"note: {line}")
    for line in failures[:20]:
        print(f"problem: {line}")
    sys.exit(1 if failures else 0)


def inflight(base, n, client_id, secret, out, sentfile):
    u = urllib.parse.urlsplit(base)
    n = int(n)
    body = token_body(client_id, secret)
    results = [None] * n
    sent = threading.Barrier(n + 1)

    def one(i):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        t0 = time.time()
        try:
            conn.request("POST", "/oauth2/token", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded", "Connection": "close"})
        except Exception as e:  # noqa: BLE001
            results[i] = {"sent": False, "status": None, "error": f"{type(e).__name__}: {e}"}
            sent.wait()
            return
        sent.wait()
        try:
            resp = conn.getresponse()
            data = resp.read()
            complete = len(data) == int(resp.getheader("Content-Length", "-1"))
            token = resp.status == 200 and bool(json.loads(data).get("access_token"))
            results[i] = {"sent": True, "status": resp.status, "complete": complete, "token": token,
                          "dt": time.time() - t0, "error": None}
        except Exception as e:  # noqa: BLE001
            results[i] = {"sent": True, "status": None, "error": f"{type(e).__name__}: {e}", "dt": time.time() - t0}
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    sent.wait()
    open(sentfile, "w").close()
    for t in threads:
        t.join()
    with open(out, "w") as f:
        json.dump(results, f)


class SmtpSink(asyncio.Protocol):
    """Enough SMTP for lettre: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def __init__(self, directory):
        self.dir = directory
        self.buf = b""
        self.in_data = False
        self.rcpt = []

    def connection_made(self, transport):
        self.t = transport
        self.t.write(b"220 faults-sink ESMTP\r\n")

    def data_received(self, data):
        self.buf += data
        while True:
            if self.in_data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    return
                message, self.buf = self.buf[:end + 2], self.buf[end + 5:]
                name = os.path.join(self.dir, f"{time.time():.6f}-{os.getpid()}.eml")
                with open(name + ".tmp", "wb") as f:
                    f.write(b"X-Sink-Rcpt: " + ",".join(self.rcpt).encode() + b"\r\n" + message)
                os.rename(name + ".tmp", name)
                self.in_data, self.rcpt = False, []
                self.t.write(b"250 2.0.0 queued\r\n")
                continue
            line_end = self.buf.find(b"\r\n")
            if line_end < 0:
                return
            line, self.buf = self.buf[:line_end].decode("utf-8", "replace"), self.buf[line_end + 2:]
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.t.write(b"250-faults-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == "RCPT":
                self.rcpt.append(line.split(":", 1)[1].strip().strip("<>").split(">")[0])
                self.t.write(b"250 2.1.5 ok\r\n")
            elif verb == "DATA":
                self.in_data = True
                self.t.write(b"354 end with <CRLF>.<CRLF>\r\n")
            elif verb == "QUIT":
                self.t.write(b"221 2.0.0 bye\r\n")
                self.t.close()
                return
            elif verb == "RSET":
                self.rcpt = []
                self.t.write(b"250 2.0.0 ok\r\n")
            else:  # MAIL, NOOP
                self.t.write(b"250 2.0.0 ok\r\n")


def smtp_sink(port, directory):
    os.makedirs(directory, exist_ok=True)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SmtpSink(directory), "127.0.0.1", int(port))
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    commands = {"free-port": free_port, "probe": probe, "outage": outage, "inflight": inflight,
                "smtp-sink": smtp_sink}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
