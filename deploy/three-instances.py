"""Drives three TruSec instances round-robin (deploy/three-instances starts
them): python3 deploy/three-instances.py API_KEY PORT1 PORT2 PORT3.
Standard library only. Exits non-zero with the first check that failed."""
import base64
import hashlib
import http.cookiejar
import json
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

KEY = sys.argv[1]
BASES = [f"http://127.0.0.1:{p}" for p in sys.argv[2:5]]
REDIRECT = "https://app.example.com/callback"
PASSWORD = "a passphrase for three instances"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(jar))


def call(i, method, path, body=None, form=None, headers=None):
    """(status, headers, body bytes) of one request to instance i."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["content-type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        h["content-type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(BASES[i % 3] + path, data=data, method=method, headers=h)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def api(i, method, path, body=None):
    status, _, raw = call(i, method, path, body, headers={"authorization": f"Bearer {KEY}"})
    return status, json.loads(raw) if raw else None


def check(cond, what):
    if not cond:
        sys.exit(f"three-instances: FAILED: {what}")


def verify(i, token):
    status, v = api(i, "POST", "/v1/sessions/verify", {"token": token})
    check(status == 200, f"verify on instance {i + 1}: {status} {v}")
    return v["valid"]


def kid(jwt):
    head = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


def basic(client):
    raw = f"{client['client_id']}:{client['client_secret']}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


def grant(i, client, form):
    status, _, raw = call(i, "POST", "/oauth/token", form=form, headers=basic(client))
    return status, json.loads(raw)


def hidden(html, name):
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    check(m, f"no {name} field in a hosted page")
    return m.group(1)


# Sessions: made on 1, verified on 2 and 3; revoked on 2, refused by all.
status, user = api(0, "POST", "/v1/users", {"email": "ada@example.com", "password": PASSWORD})
check(status == 201, f"create user: {status} {user}")
status, s = api(0, "POST", "/v1/sessions", {"user_id": user["id"]})
check(status == 201, f"create session: {status} {s}")
check(all(verify(i, s["token"]) for i in range(3)), "a session made on one instance verifies on all")
status, r = api(1, "POST", "/v1/sessions/revoke", {"token": s["token"]})
check(status == 200 and r["revoked"], f"revoke on instance 2: {status} {r}")
check(not any(verify(i, s["token"]) for i in range(3)), "a revoke on one instance is seen at once by all")

# Signing keys: rotated on 1; 1 signs with the new key, 2 and 3 publish and accept it.
status, client = api(0, "POST", "/v1/oauth/clients", {
    "name": "three-instances", "type": "confidential", "redirect_uris": [REDIRECT],
    "grant_types": ["authorization_code", "client_credentials"], "scopes": ["openid", "email", "read:users"]})
check(status == 201, f"register client: {status} {client}")
cc = {"grant_type": "client_credentials", "scope": "read:users"}
status, before = grant(0, client, cc)
check(status == 200, f"client_credentials: {status} {before}")
status, _ = api(0, "POST", "/v1/signing-keys/rotate", {})
check(status == 200, f"rotate: {status}")
status, after = grant(0, client, cc)
check(status == 200 and kid(after["access_token"]) != kid(before["access_token"]), "instance 1 signs with the new key")
for i in (1, 2):
    _, _, raw = call(i, "GET", "/.well-known/jwks.json")
    kids = {k["kid"] for k in json.loads(raw)["keys"]}
    check(kid(after["access_token"]) in kids, f"instance {i + 1} publishes the new key")
    status, _, raw = call(i, "POST", "/oauth/introspect", form={"token": after["access_token"]}, headers=basic(client))
    check(status == 200 and json.loads(raw)["active"], f"instance {i + 1} accepts a token of the new key")

# A sign-in: every step on the next instance in turn, the code redeemed on another.
verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
url = "/oauth/authorize?" + urllib.parse.urlencode({
    "response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
    "scope": "openid email", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"})
step, code = 0, None
for _ in range(12):
    status, headers, raw = call(step, "GET", url)
    step += 1
    if status in (302, 303):
        loc = headers["location"]
        if loc.startswith(REDIRECT):
            code = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)["code"][0]
            break
        url = urllib.parse.urlparse(loc)._replace(scheme="", netloc="").geturl()
        continue
    check(status == 200, f"GET {url}: {status}")
    html = raw.decode()
    form = {"csrf_token": hidden(html, "csrf_token"), "interaction": hidden(html, "interaction")}
    if "/login" in url:
        form.update(email="ada@example.com", password=PASSWORD)
    elif "/consent" in url:
        form.update(decision="approve")
    else:
        sys.exit(f"three-instances: FAILED: unexpected page {url}")
    status, headers, _ = call(step, "POST", url.split("?")[0], form=form)
    step += 1
    check(status == 303, f"POST {url}: {status}")
    url = urllib.parse.urlparse(headers["location"])._replace(scheme="", netloc="").geturl()
    if headers["location"].startswith(REDIRECT):
        code = urllib.parse.parse_qs(urllib.parse.urlparse(headers["location"]).query)["code"][0]
        break
check(code, "a sign-in hopping between instances comes back with a code")
status, tokens = grant(step, client, {"grant_type": "authorization_code", "code": code,
                                      "redirect_uri": REDIRECT, "code_verifier": verifier})
check(status == 200 and "id_token" in tokens, f"redeem on another instance: {status} {tokens}")

# One rate-limit budget (TRUSEC_RATE_LIMIT_MANAGEMENT=30/min for this key) whichever instance answers.
answers = [api(i, "GET", "/v1/users?limit=1")[0] for i in range(45)]
check(set(answers) <= {200, 429}, f"only 200 and 429: {answers}")
check(answers.count(200) <= 30 and answers.count(429) >= 15, f"one budget across instances, not three: {answers}")
print(f"three-instances: {answers.count(200)} of 45 management calls allowed, {answers.count(429)} limited")
