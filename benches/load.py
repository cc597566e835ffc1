#!/usr/bin/env python3
"""Helpers of benches/load.sh (standard library only).

  load.py ready BIN DIR PORT...     start `BIN serve` in DIR (env from the caller), print the ms from
                                    spawn to the first 200 on /readyz, then the pid; leaves it running
  load.py enrol URL INVITE_PATH     accept an invitation (password + TOTP), print the session cookie
  load.py rss PID                   print VmRSS, VmHWM, RssAnon and RssFile in MiB
"""
import base64
import hashlib
import hmac
import http.client
import os
import re
import struct
import subprocess
import sys
import time
import urllib.parse

PASSWORD = "correct horse battery staple 42"


def totp(key_b32, at):
    key = base64.b32decode(key_b32.replace(" ", "").upper() + "=" * (-len(key_b32.replace(" ", "")) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


class Browser:
    """Keeps cookies by name (the session cookie is Secure and the portal runs on http loopback)."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.cookies = u.hostname, u.port, {}

    def request(self, method, path, form=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        res = conn.getresponse()
        text = res.read().decode()
        for name, value in res.getheaders():
            if name.lower() == "set-cookie":
                k, v = value.split(";", 1)[0].split("=", 1)
                self.cookies[k] = v
        conn.close()
        return res.status, text


def enrol(url, invite_path):
    b = Browser(url)
    b.request("GET", invite_path)
    status, _ = b.request("POST", invite_path, {"password": PASSWORD, "password_confirm": PASSWORD})
    assert status == 303, status
    _, setup = b.request("GET", "/mfa/setup")
    key = re.search(r'id="totp-key">([^<]+)</code>', setup).group(1)
    status, _ = b.request("POST", "/mfa/setup", {"code": totp(key, time.time())})
    assert status == 200, status
    status, page = b.request("GET", "/manage-api-credentials")
    assert status == 200, status
    name = next(k for k in b.cookies if "session" in k)
    print(f"{name}={b.cookies[name]}")


def ready(bin_, dir_, port):
    started = time.monotonic()
    proc = subprocess.Popen([bin_, "serve"], cwd=dir_, stdout=subprocess.DEVNULL, stderr=open(os.path.join(dir_, "log"), "a"))
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit(f"the portal exited with {proc.returncode}")
        time.sleep(0.002)
    print(f"{(time.monotonic() - started) * 1000:.0f} {proc.pid}")


def rss(pid):
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    mib = lambda k: int(fields[k].split()[0]) / 1024
    print(f"{mib('VmRSS'):.1f} {mib('VmHWM'):.1f} {mib('RssAnon'):.1f} {mib('RssFile'):.1f}")


if __name__ == "__main__":
    {"ready": ready, "enrol": enrol, "rss": rss}[sys.argv[1]](*sys.argv[2:])
