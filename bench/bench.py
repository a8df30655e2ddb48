"""TruSec and node-oidc-provider side by side (bench/run starts this; see
bench/README.md for what it measures and how to read it).

Every server runs pinned to core 0 (taskset), the load (wrk, or the
sign-in driver of flow.py) on core 1. Per scenario and server, A B A B:
a warm-up, then a fixed duration, and the server's CPU time (utime +
stime of /proc/PID/stat) over that duration divided by the requests
answered: the figure that holds on a noisy machine.
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flow  # noqa: E402
import seed  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SERVER_CPU, LOAD_CPU = "0", "1"
REDIRECT = "https://app.example.com/callback"
SP_ENTITY = "https://sp.example.com/saml"
ACS = "https://sp.example.com/saml/acs"
EMAIL, PASSWORD = "bench@example.com", "correct horse battery staple"


class BenchError(Exception):
    """A scenario's setup failed: the run stops, loudly."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_call(base, method, path, body=None, headers=None, ok=(200, 201)):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        elif body is not None:
            headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    if r.status not in ok:
        raise BenchError(f"{method} {path}: {r.status}: {data[:400]!r}")
    return json.loads(data) if data and r.getheader("Content-Type", "").startswith("application/json") else data


def basic(cid, secret):
    return "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()


class Server:
    """A server process pinned to core 0, started and stopped by us."""

    name = "?"
    ready_path = "/"

    def __init__(self, work):
        self.work = work
        self.proc = None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(work, f"{self.name}.log")

    def command(self):
        raise NotImplementedError

    def env(self):
        raise NotImplementedError

    def start(self):
        """Starts the server; returns the seconds to its first 200."""
        t0 = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CPU, *self.command()],
                cwd=self.data,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        u = urllib.parse.urlsplit(self.base)
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
                c.request("GET", self.ready_path)
                status = c.getresponse().status
                c.close()
                if status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > 60:
                raise BenchError(f"{self.name} did not answer {self.ready_path} within 60 s:\n{self.tail()}")
            time.sleep(0.002)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def tail(self):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def cpu_ticks(self):
        # Fields after the parenthesised command: utime is the 14th field
        # of the line, stime the 15th (proc(5)); the server's own process
        # (the taskset process exec()s it, so the pid is the same).
        with open(f"/proc/{self.proc.pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])

    def rss_mib(self, field="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return float("nan")


class TruSec(Server):
    name = "trusec"
    ready_path = "/healthz"

    def __init__(self, work, binary, workers, database_url=None, redis_url=None, redis_prefix=None, tag=""):
        self.name = f"trusec{tag}"
        super().__init__(work)
        self.binary = binary
        self.workers = workers
        self.database_url = database_url
        self.redis_url = redis_url
        self.redis_prefix = redis_prefix
        self.data = os.path.join(work, self.name)
        os.makedirs(self.data)

    def command(self):
        return [self.binary, "serve"]

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSEC_")}
        env.update(
            TRUSEC_BIND=f"127.0.0.1:{self.port}",
            TRUSEC_ISSUER=self.base,
            TRUSEC_WORKERS=str(self.workers),
            TRUSEC_LOG="warn",
        )
        # Rate limits off, so the load is measured rather than refused.
        for family in ("LOGIN", "TOKEN", "MANAGEMENT", "REGISTRATION", "AUTHORIZE", "SAML"):
            env[f"TRUSEC_RATE_LIMIT_{family}"] = "off"
        if self.database_url:
            env["TRUSEC_DATABASE_URL"] = self.database_url
        if self.redis_url:
            env["TRUSEC_REDIS_URL"] = self.redis_url
            env["TRUSEC_REDIS_KEY_PREFIX"] = self.redis_prefix
        return env

    def setup(self):
        """An API key (CLI), a user with a password, a session, a
        confidential client, an SP; then a sign-in for a userinfo token and
        a SAML login session. Returns what the scenarios need."""
        out = subprocess.run(
            [self.binary, "keys", "create", "--type", "secret", "--name", "bench"],
            cwd=self.data,
            env=self.env(),
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise BenchError(f"trusec keys create: {out.stderr}")
        key = out.stdout.strip()
        self.cold_start = self.start()
        auth = {"Authorization": f"Bearer {key}"}
        api = lambda path, body: http_call(self.base, "POST", path, body, auth)  # noqa: E731
        user = api("/v1/users", {"email": EMAIL, "password": PASSWORD, "name": "Bench"})
        session = api("/v1/sessions", {"user_id": user["id"]})
        client = api(
            "/v1/oauth/clients",
            {
                "name": "bench",
                "type": "confidential",
                "grant_types": ["client_credentials", "authorization_code"],
                "redirect_uris": [REDIRECT],
                "scopes": ["openid", "email", "profile", "read:users"],
            },
        )
        api("/v1/saml/service-providers", {"entity_id": SP_ENTITY, "acs_url": ACS, "name": "bench"})
        srv = {
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "redirect_uri": REDIRECT,
            "authorize_path": "/oauth/authorize",
            "token_path": "/oauth/token",
        }
        cc_body = "grant_type=client_credentials&scope=read%3Ausers"
        auth_basic = basic(srv["client_id"], srv["client_secret"])
        access = http_call(self.base, "POST", "/oauth/token", cc_body, {"Authorization": auth_basic})["access_token"]
        signed_in = flow.sign_in(self.base, srv, EMAIL, PASSWORD)
        query = urllib.parse.urlencode({"SAMLRequest": saml_redirect_request(self.base, "_setup" + uuid.uuid4().hex)})
        cookie = flow.saml_session_cookie(self.base, f"/saml/sso?{query}", EMAIL, PASSWORD, ACS)
        self.srv = srv
        self.scenarios = {
            "client_credentials ES256": wrk_plain("POST", "/oauth/token", cc_body, auth_basic),
            "client_credentials RS256": None,  # access tokens are ES256 only (no per-client alg)
            "JWKS": wrk_plain("GET", "/.well-known/jwks.json"),
            "discovery": wrk_plain("GET", "/.well-known/openid-configuration"),
            "introspection": wrk_plain("POST", "/oauth/introspect", f"token={access}", auth_basic),
            "userinfo": wrk_plain("GET", "/oauth/userinfo", None, f"Bearer {signed_in['access_token']}"),
            "session verify": wrk_plain(
                "POST", "/v1/sessions/verify", json.dumps({"token": session["token"]}), f"Bearer {key}", "application/json"
            ),
            "password sign-in (hosted pages)": ("flow", srv),
            "signed SAML response (SP-initiated, session)": ("saml", cookie),
        }


class Peer(Server):
    name = "peer"
    ready_path = "/.well-known/openid-configuration"

    def __init__(self, work, peer_dir):
        super().__init__(work)
        self.peer_dir = peer_dir
        self.data = os.path.join(work, self.name)
        os.makedirs(self.data)
        self.client_id = "bench"
        self.client_secret = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()

    def command(self):
        return ["node", os.path.join(self.peer_dir, "server.js")]

    def env(self):
        env = dict(os.environ)
        env.update(
            PORT=str(self.port),
            DATA=self.data,
            CLIENT_ID=self.client_id,
            CLIENT_SECRET=self.client_secret,
            REDIRECT_URI=REDIRECT,
            NODE_ENV="production",
        )
        return env

    def setup(self):
        self.cold_start = self.start()
        auth_basic = basic(self.client_id, self.client_secret)
        cc = "grant_type=client_credentials&scope=read%3Ausers"
        opaque = http_call(self.base, "POST", "/token", cc, {"Authorization": auth_basic})["access_token"]
        srv = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": REDIRECT,
            "authorize_path": "/auth",
            "token_path": "/token",
        }
        signed_in = flow.sign_in(self.base, srv, EMAIL, PASSWORD)
        self.srv = srv
        self.scenarios = {
            "client_credentials ES256": wrk_plain(
                "POST", "/token", cc + "&resource=urn%3Abench%3Aes256", auth_basic
            ),
            "client_credentials RS256": wrk_plain(
                "POST", "/token", cc + "&resource=urn%3Abench%3Ars256", auth_basic
            ),
            "JWKS": wrk_plain("GET", "/jwks"),
            "discovery": wrk_plain("GET", "/.well-known/openid-configuration"),
            "introspection": wrk_plain("POST", "/token/introspection", f"token={opaque}", auth_basic),
            "userinfo": wrk_plain("GET", "/me", None, f"Bearer {signed_in['access_token']}"),
            "session verify": None,  # no such endpoint
            "password sign-in (hosted pages)": ("flow", srv),
            "signed SAML response (SP-initiated, session)": None,  # no SAML
        }


def lua_str(s):
    return "[==[" + s + "]==]"


def wrk_plain(method, path, body=None, authorization=None, ctype="application/x-www-form-urlencoded"):
    lines = [f"wrk.method = {lua_str(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {lua_str(body)}")
        lines.append(f'wrk.headers["Content-Type"] = {lua_str(ctype)}')
    if authorization:
        lines.append(f'wrk.headers["Authorization"] = {lua_str(authorization)}')
    return ("wrk", path, "\n".join(lines) + "\n")


def saml_authn_request(base, request_id, instant):
    return (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="{request_id}" Version="2.0" IssueInstant="{instant}" Destination="{base}/saml/sso" '
        f'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" AssertionConsumerServiceURL="{ACS}">'
        f"<saml:Issuer>{SP_ENTITY}</saml:Issuer></samlp:AuthnRequest>"
    )


def saml_redirect_request(base, request_id):
    import zlib

    xml = saml_authn_request(base, request_id, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(raw.compress(xml.encode()) + raw.flush()).decode()


# HTTP-Redirect binding (SAML Bindings §3.4.4.1): DEFLATE, base64, URL
# encoding. wrk's Lua has no zlib, so each request is one DEFLATE *stored*
# block (RFC 1951 §3.2.4): valid DEFLATE, just uncompressed. Every request
# gets a fresh ID, since the IdP refuses a replayed one.
SAML_LUA = r"""
local b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {math.floor(v / 262144) % 64, math.floor(v / 4096) % 64, math.floor(v / 64) % 64, v % 64}
    out[#out + 1] = b64:sub(q[1] + 1, q[1] + 1) .. b64:sub(q[2] + 1, q[2] + 1)
      .. (b and b64:sub(q[3] + 1, q[3] + 1) or "=") .. (c and b64:sub(q[4] + 1, q[4] + 1) or "=")
  end
  return table.concat(out)
end
local function stored(s)
  local n = #s
  local lo, hi = n % 256, math.floor(n / 256)
  return string.char(1, lo, hi, 255 - lo, 255 - hi) .. s
end
local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
local counter = 0
local prefix = ""
-- run_wrk passes a fresh prefix to every wrk run: the warm-up's IDs must
-- not come back in the measured run.
init = function(args)
  prefix = PREFIX .. (args[1] or "")
end
request = function()
  counter = counter + 1
  local id = prefix .. "_" .. (tid or 0) .. "_" .. counter
  local xml = string.format(TEMPLATE, id, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  return wrk.format("GET", "/saml/sso?SAMLRequest=" .. urlencode(base64(stored(xml))), {["Cookie"] = COOKIE})
end
"""


# Appended to every scenario: a response other than 200 is an error (wrk
# itself counts only status >= 400, so a redirect to the login page, say,
# would pass as a cheap success). Each thread counts in its own Lua state;
# done() sums them.
COUNT_LUA = r"""
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
not_200 = 0
first_status = 0
response = function(status, headers, body)
  if status ~= 200 then
    not_200 = not_200 + 1
    if first_status == 0 then first_status = status end
  end
end
done = function(summary, latency, requests)
  local total, first = 0, 0
  for _, t in ipairs(threads) do
    total = total + (t:get("not_200") or 0)
    if first == 0 then first = t:get("first_status") or 0 end
  end
  io.write(string.format("NOT_200 %d %d\n", total, first))
end
"""


def wrk_saml(base, cookie):
    template = saml_authn_request(base, "%s", "%s")
    prefix = "_b" + uuid.uuid4().hex
    head = f"PREFIX = {lua_str(prefix)}\nTEMPLATE = {lua_str(template)}\nCOOKIE = {lua_str(cookie)}\n"
    return ("wrk", "/saml/sso", head + SAML_LUA)


def to_ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3), ("m", 6e4)):
        if v.endswith(unit) and v[: -len(unit)].replace(".", "", 1).isdigit():
            return float(v[: -len(unit)]) * f
    raise BenchError(f"wrk latency {v!r}")


def run_wrk(server, spec, secs, warmup, conns, work):
    _, path, lua = spec
    script = os.path.join(work, "scenario.lua")
    with open(script, "w") as f:
        f.write(lua + COUNT_LUA)
    # A response slower than 5 s is a timeout, counted as an error.
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", "--timeout", "5s", "--latency", "-s", script]
    if warmup > 0:
        subprocess.run([*cmd, f"-d{warmup}s", server.base + path, "--", "w"], capture_output=True, check=True)
    before = server.cpu_ticks()
    out = subprocess.run([*cmd, f"-d{secs}s", server.base + path, "--", "m"], capture_output=True, text=True)
    after = server.cpu_ticks()
    if out.returncode != 0:
        raise BenchError(f"wrk failed: {out.stderr}")
    text = out.stdout
    requests = int(next(line.split()[0] for line in text.splitlines() if "requests in" in line))
    rps = float(next(line.split()[1] for line in text.splitlines() if line.startswith("Requests/sec")))
    lat = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            lat[parts[0]] = to_ms(parts[1])
    errors = 0
    for line in text.splitlines():
        if line.startswith("NOT_200 "):
            errors += int(line.split()[1])
            if int(line.split()[1]):
                print(f"  {server.name} {path}: {line.split()[1]} responses not 200, the first {line.split()[2]}", file=sys.stderr)
        if "Socket errors" in line:
            print(f"  {server.name} {path}: {line.strip()}", file=sys.stderr)
            errors += sum(int(p.strip(",")) for p in line.split()[3::2])
    if errors:
        print(f"  {server.name} {path}: wrk said:\n{text}", file=sys.stderr)
    return {
        "requests": requests,
        "rps": rps,
        "p50": lat.get("50%", float("nan")),
        "p99": lat.get("99%", float("nan")),
        "ticks": after - before,
        "errors": errors,
    }


def run_flow(server, srv, secs, warmup, conns):
    def one():
        flow.sign_in(server.base, srv, EMAIL, PASSWORD)

    if warmup > 0:
        flow.load(one, conns, warmup)
    before = server.cpu_ticks()
    t0 = time.monotonic()
    ok, errors, lat, first = flow.load(one, conns, secs)
    elapsed = time.monotonic() - t0
    after = server.cpu_ticks()
    if first:
        print(f"  {server.name} sign-in: {errors} failed flows, first: {first}", file=sys.stderr)

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3 if lat else float("nan")

    return {
        "requests": ok,
        "rps": ok / elapsed,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "ticks": after - before,
        "errors": errors,
    }


def measure(server, spec, args, work):
    if spec[0] == "wrk":
        return run_wrk(server, spec, args.secs, args.warmup, args.connections, work)
    if spec[0] == "saml":
        return run_wrk(server, wrk_saml(server.base, spec[1]), args.secs, args.warmup, args.connections, work)
    if spec[0] == "flow":
        return run_flow(server, spec[1], args.secs, args.warmup, args.flow_concurrency)
    raise BenchError(f"unknown scenario kind {spec[0]}")


def combine(runs):
    """A B A B rounds of one server and scenario: CPU over all requests;
    req/s the mean; p50/p99 and RSS the worst round; errors summed."""
    requests = sum(r["requests"] for r in runs)
    ticks = sum(r["ticks"] for r in runs)
    return {
        "requests": requests,
        "cpu_us": ticks / HZ * 1e6 / requests if requests else float("nan"),
        "rps": sum(r["rps"] for r in runs) / len(runs),
        "p50": max(r["p50"] for r in runs),
        "p99": max(r["p99"] for r in runs),
        "rss": max(r["rss"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def fmt(v, spec="{:.0f}"):
    return "–" if v is None or v != v else spec.format(v)


def lat_fmt(ms):
    if ms != ms:
        return "–"
    return f"{ms * 1e3:.0f} µs" if ms < 1 else f"{ms:.1f} ms"


def table(title, results, servers):
    """Markdown: one row per scenario, each server's figures, the ratio of
    server CPU per request (peer / TruSec: above 1 means TruSec is cheaper)."""
    names = [s.name for s in servers]
    print(f"\n### {title}\n")
    head = ["scenario"]
    for n in names:
        head += [f"{n} CPU µs/req", f"{n} req/s", f"{n} p50", f"{n} p99", f"{n} RSS MiB", f"{n} errors"]
    if len(names) == 2:
        head.append("ratio (CPU)")
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for scenario, per in results.items():
        row = [scenario]
        for n in names:
            r = per.get(n)
            if r is None:
                row += ["–"] * 6
            else:
                row += [
                    fmt(r["cpu_us"]),
                    fmt(r["rps"]),
                    lat_fmt(r["p50"]),
                    lat_fmt(r["p99"]),
                    fmt(r["rss"], "{:.1f}"),
                    str(r["errors"]),
                ]
        if len(names) == 2:
            a, b = per.get(names[0]), per.get(names[1])
            row.append(f"{b['cpu_us'] / a['cpu_us']:.1f}×" if a and b and a["cpu_us"] > 0 else "–")
        print("| " + " | ".join(row) + " |")
    sys.stdout.flush()


def run_config(title, servers, args, work, failures):
    """Sets up the servers, runs every scenario A B A B, then cold start
    and idle RSS (restarts, last: the peer keeps its state in memory)."""
    for s in servers:
        s.setup()
    results = {}
    order = list(servers[0].scenarios)
    for s in servers[1:]:
        order += [k for k in s.scenarios if k not in order]
    if args.only:
        order = [k for k in order if any(o in k for o in args.only)]
    for scenario in order:
        per = {}
        runs = {s.name: [] for s in servers}
        for _ in range(args.rounds):
            for s in servers:
                spec = s.scenarios.get(scenario)
                if spec is None:
                    continue
                r = measure(s, spec, args, work)
                r["rss"] = s.rss_mib()
                runs[s.name].append(r)
                if r["errors"] or not r["requests"]:
                    failures.append(f"{title}: {s.name}: {scenario}: {r['errors']} errors, {r['requests']} requests")
        for s in servers:
            if runs[s.name]:
                per[s.name] = combine(runs[s.name])
        results[scenario] = per
        print(f"  done: {scenario}", file=sys.stderr)
    # Cold start: restart on the initialised data directory, time to the
    # first 200 (TruSec /healthz; the peer has none: its discovery
    # document); idle RSS one second after that restart, no load yet.
    cold = {}
    idle = {}
    peak = {s.name: s.rss_mib("VmHWM") for s in servers}
    for s in servers:
        times = []
        rss = []
        for _ in range(args.restarts):
            s.stop()
            times.append(s.start())
            time.sleep(1)
            rss.append(s.rss_mib())
        times.sort()
        cold[s.name] = times[len(times) // 2] * 1e3
        idle[s.name] = max(rss)
    table(title, results, servers)
    names = [s.name for s in servers]
    print()
    print("| | " + " | ".join(names) + (" | ratio |" if len(names) == 2 else " |"))
    print("|" + " --- |" * (len(names) + 1 + (len(names) == 2)))
    for label, vals, unit in (
        (f"cold start: restart to first 200 (median of {args.restarts})", cold, "ms"),
        ("idle RSS after restart", idle, "MiB"),
        ("peak RSS over the scenarios (VmHWM)", peak, "MiB"),
    ):
        cells = [f"{vals[n]:.1f} {unit}" for n in names]
        if len(names) == 2:
            cells.append(f"{vals[names[1]] / vals[names[0]]:.1f}×")
        print(f"| {label} | " + " | ".join(cells) + " |")
    sys.stdout.flush()
    for s in servers:
        s.stop()
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--binary", required=True)
    p.add_argument("--peer-dir", required=True)
    p.add_argument("--secs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2, help="seconds (wrk takes whole seconds)")
    p.add_argument("--rounds", type=int, default=2, help="A B rounds (2 = A B A B)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--flow-concurrency", type=int, default=4, help="concurrent sign-ins")
    p.add_argument("--restarts", type=int, default=5)
    p.add_argument("--workers", default="1,2", help="TruSec worker counts (the first also runs the peer)")
    p.add_argument("--pg", help="PostgreSQL URL: also run TruSec on PostgreSQL + Redis")
    p.add_argument("--redis", help="Redis URL (with --pg)")
    p.add_argument("--seed", action="store_true", help="also run TruSec seeded (100k users, 1M sessions, 10k clients)")
    p.add_argument("--seed-scale", type=float, default=1.0, help="fraction of the seed sizes")
    p.add_argument("--only", action="append", help="only scenarios whose name contains this")
    p.add_argument("--no-peer", action="store_true", help="skip the side-by-side run (TruSec and the peer)")
    p.add_argument("--no-workers", action="store_true", help="skip the runs with more TruSec workers")
    p.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL + Redis run")
    p.add_argument("--smoke", action="store_true", help="fail if any scenario errors")
    args = p.parse_args()
    args.binary = os.path.abspath(args.binary)
    args.peer_dir = os.path.abspath(args.peer_dir)

    work = tempfile.mkdtemp(prefix="trusec-bench-")
    servers = []
    pg_schema = None
    redis_prefix = f"trusec-bench-{uuid.uuid4().hex[:12]}:"
    failures = []

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        workers = [int(w) for w in args.workers.split(",")]
        for i, w in enumerate(workers):
            if i == 0 and args.no_peer or i > 0 and args.no_workers:
                continue
            t = TruSec(work, args.binary, w, tag=f"-w{w}")
            group = [t]
            if i == 0:
                group.append(Peer(work, args.peer_dir))
            servers += group
            run_config(f"SQLite, {w} worker{'s' if w > 1 else ''}", group, args, work, failures)
        if args.pg and not args.no_pg:
            pg_schema = f"trusec_bench_{uuid.uuid4().hex[:12]}"
            subprocess.run(["psql", args.pg, "-qc", f"CREATE SCHEMA {pg_schema}"], check=True)
            sep = "&" if "?" in args.pg else "?"
            url = f"{args.pg}{sep}options=-csearch_path%3D{pg_schema}"
            t = TruSec(work, args.binary, workers[0], url, args.redis, redis_prefix, tag="-pg")
            servers.append(t)
            run_config(f"PostgreSQL + Redis, {workers[0]} worker", [t], args, work, failures)
        if args.seed:
            t = TruSec(work, args.binary, workers[0], tag="-seeded")
            servers.append(t)
            t.before_scenarios = lambda: None
            seeded_setup = t.setup

            def setup_then_seed():
                seeded_setup()
                t.stop()
                counts = seed.seed_sqlite(os.path.join(t.data, "data", "trusec.db"), args.seed_scale)
                print(f"  seeded: {counts}", file=sys.stderr)
                t.start()

            t.setup = setup_then_seed
            run_config("SQLite, seeded", [t], args, work, failures)
    finally:
        for s in servers:
            s.stop()
        if pg_schema:
            subprocess.run(["psql", args.pg, "-qc", f"SET client_min_messages = warning; DROP SCHEMA {pg_schema} CASCADE"], check=False)
        if args.redis:
            subprocess.run(
                ["sh", "-c", f"redis-cli -u '{args.redis}' --scan --pattern '{redis_prefix}*' | xargs -r redis-cli -u '{args.redis}' del >/dev/null"],
                check=False,
            )
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("\nscenarios with errors:\n  " + "\n  ".join(failures), file=sys.stderr)
        if args.smoke:
            sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except (BenchError, flow.FlowError, subprocess.CalledProcessError) as e:
        print(f"bench: a scenario's setup failed: {e}", file=sys.stderr)
        sys.exit(1)
