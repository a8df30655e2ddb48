"""A browser's sign-in, without a browser: follows redirects, keeps
cookies, fills and submits the first form of each page (email or login,
password, the approving button), until the client's redirect URI receives
a code, then exchanges it (PKCE, client_secret_basic).

Works on both servers: TruSec's hosted login and consent pages, and
node-oidc-provider's interaction pages. Standard library only, one
keep-alive connection per flow.
"""

import base64
import hashlib
import http.client
import json
import secrets
import time
import urllib.parse
from html.parser import HTMLParser

MAX_STEPS = 12


class FlowError(Exception):
    pass


class _Form(HTMLParser):
    """The first <form> of a page: action, method, and its fields."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.action = None
        self.method = "get"
        self.fields = []  # (name, type, value)
        self.buttons = []  # (name, value)
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self._done:
            return
        if tag == "form" and not self._in_form:
            self._in_form = True
            self.action = a.get("action") or ""
            self.method = (a.get("method") or "get").lower()
        elif self._in_form and tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind == "submit":
                self.buttons.append((a["name"], a.get("value") or ""))
            else:
                self.fields.append((a["name"], kind, a.get("value") or ""))
        elif self._in_form and tag == "button" and (a.get("type") or "submit") == "submit":
            self.buttons.append((a.get("name"), a.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


class Client:
    """One keep-alive connection to one server, with a cookie jar."""

    def __init__(self, base, timeout=30):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.timeout = timeout
        self.conn = None
        self.cookies = {}

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def cookie_header(self):
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = self.cookie_header()
        if body is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: once more.
                self.close()
                if attempt:
                    raise
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                k = k.strip()
                if "max-age=0" in value.lower() or v == "":
                    self.cookies.pop(k, None)
                else:
                    self.cookies[k] = v
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        return resp.status, resp.getheader("Location"), data


def _path_of(base_path, location):
    """The request path of a same-server Location (absolute or relative)."""
    u = urllib.parse.urlsplit(location)
    if u.scheme:
        return urllib.parse.urlunsplit(("", "", u.path, u.query, ""))
    return urllib.parse.urljoin(base_path, location)


def _submit(form, page_path, email, password):
    fields = []
    for name, kind, value in form.fields:
        if kind == "password":
            fields.append((name, password))
        elif kind in ("email", "text") and not value:
            fields.append((name, email))
        else:
            fields.append((name, value))
    # The approving button: TruSec's consent names it decision=approve.
    named = [b for b in form.buttons if b[0]]
    approve = [b for b in named if b[1] in ("approve", "allow", "yes")]
    if approve:
        fields.append(approve[0])
    elif named:
        fields.append(named[0])
    action = urllib.parse.urljoin(page_path, form.action or page_path)
    return form.method, action, urllib.parse.urlencode(fields)


def browse(client, path, email, password, stop):
    """Follows `path` like a browser until `stop(location)` is true for a
    redirect; returns that Location. Fails loudly on anything else."""
    method, body = "GET", None
    for _ in range(MAX_STEPS):
        status, location, data = client.request(method, path, body)
        if status in (301, 302, 303, 307, 308):
            if not location:
                raise FlowError(f"{status} without Location from {path}")
            if stop(location):
                return location
            path, method, body = _path_of(path, location), "GET", None
            continue
        if status != 200:
            raise FlowError(f"{method} {path}: {status}: {data[:300]!r}")
        form = _Form()
        form.feed(data.decode("utf-8", "replace"))
        if form.action is None:
            raise FlowError(f"{method} {path}: a page without a form: {data[:300]!r}")
        method, action, encoded = _submit(form, path, email, password)
        if method == "post":
            path, body = action, encoded
            method = "POST"
        else:
            path, body = f"{action}?{encoded}", None
            method = "GET"
    raise FlowError(f"no end after {MAX_STEPS} steps")


def sign_in(base, srv, email, password, scope="openid email profile"):
    """One authorization-code sign-in through the hosted pages, then the
    code exchange. Returns the token response."""
    client = Client(base)
    try:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(12)
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": srv["client_id"],
                "redirect_uri": srv["redirect_uri"],
                "scope": scope,
                "state": state,
                "nonce": secrets.token_urlsafe(12),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        back = browse(
            client,
            f"{srv['authorize_path']}?{query}",
            email,
            password,
            lambda loc: loc.startswith(srv["redirect_uri"]),
        )
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
        if params.get("state") != state or "code" not in params:
            raise FlowError(f"the redirect carries no code for our state: {back}")
        body = urllib.parse.urlencode(
            {
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": srv["redirect_uri"],
                "code_verifier": verifier,
            }
        )
        basic = base64.b64encode(f"{srv['client_id']}:{srv['client_secret']}".encode()).decode()
        status, _, data = client.request("POST", srv["token_path"], body, {"Authorization": f"Basic {basic}"})
        if status != 200:
            raise FlowError(f"code exchange: {status}: {data[:300]!r}")
        return json.loads(data)
    finally:
        client.close()


def saml_session_cookie(base, path_and_query, email, password, acs):
    """Signs in through an SP-initiated SAML request; returns the Cookie
    header of the signed-in browser (for requests that find a session)."""
    client = Client(base)
    try:
        status, _, data = None, None, b""
        browse_path = path_and_query
        # The flow ends on the auto-post page (200, a form to the ACS URL):
        # browse() would submit it, so stop before, on the continue step.
        method, body = "GET", None
        for _ in range(MAX_STEPS):
            status, location, data = client.request(method, browse_path, body)
            if status in (301, 302, 303):
                browse_path, method, body = _path_of(browse_path, location), "GET", None
                continue
            if status != 200:
                raise FlowError(f"SAML sign-in: {method} {browse_path}: {status}: {data[:300]!r}")
            if b"SAMLResponse" in data:
                if acs.encode() not in data:
                    raise FlowError("SAML sign-in: the response page does not post to the ACS")
                return client.cookie_header()
            form = _Form()
            form.feed(data.decode("utf-8", "replace"))
            if form.action is None:
                raise FlowError(f"SAML sign-in: a page without a form: {data[:300]!r}")
            m, action, encoded = _submit(form, browse_path, email, password)
            browse_path, method, body = action, m.upper(), encoded
        raise FlowError("SAML sign-in: no response page")
    finally:
        client.close()


def load(fn, concurrency, seconds):
    """Runs `fn()` in `concurrency` threads for `seconds`; returns
    (completed, errors, latencies in seconds, first error)."""
    import threading

    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    out = {"ok": 0, "errors": 0, "lat": [], "first": None}

    def worker():
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                fn()
            except Exception as e:  # counted and reported: a failed flow is an error
                with lock:
                    out["errors"] += 1
                    out["first"] = out["first"] or repr(e)
                continue
            dt = time.monotonic() - t0
            with lock:
                out["ok"] += 1
                out["lat"].append(dt)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out["ok"], out["errors"], sorted(out["lat"]), out["first"]
