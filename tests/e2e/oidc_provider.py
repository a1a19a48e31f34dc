"""A test OpenID Connect provider for the end-to-end tests: no UI, one process, loopback only.

It speaks just enough OIDC for lathe's login (authorization code flow + PKCE S256, client_secret_basic):

    GET  /.well-known/openid-configuration   discovery (issuer = provider.issuer, exactly)
    GET  /jwks                               the published signing keys
    GET  /authorize                          no login page: 302 straight back to redirect_uri with
                                             ?code=…&state=… for the user set by next_login()
    POST /token                              code -> {"id_token","access_token","token_type":"Bearer","expires_in"}
    GET  /userinfo                           Bearer access_token -> the user's claims

Usage from pytest:

    from oidc_provider import OidcProvider

    @pytest.fixture
    def idp():
        with OidcProvider(client_id="lathe", client_secret="s3cret") as p:   # started on 127.0.0.1:<free port>
            yield p

    idp.issuer            # "http://127.0.0.1:PORT" — configure lathe with this exact string
    idp.next_login(sub="u-1", preferred_username="ann", email="ann@example.com", groups=["ml"])
    # ... drive lathe's /login: lathe redirects to idp.authorization_endpoint, which redirects back ...
    idp.authorize_requests[-1]   # {"client_id","redirect_uri","state","nonce","code_challenge",…} as received
    idp.token_requests[-1]       # {"form": {...}, "client_id", "status", "error"} per POST /token

Negative-test knobs (apply to tokens issued from then on; reset() clears them):

    idp.sign_with_unpublished_key = True  # same kid as the published key, different key -> bad signature
    idp.audience = "someone-else"         # or a list, e.g. ["lathe", "other"] (azp via idp.azp)
    idp.expired = True                    # exp (and iat) an hour in the past
    idp.nonce_override = "wrong"          # the id token carries this nonce instead of the request's
    idp.issuer_override = "https://x"     # iss claim of the id token (not discovery)
    idp.discovery_issuer = "https://x"    # issuer in the discovery document
    idp.extra_claims = {"roles": "a b"}   # merged into the id token
    idp.authorize_error = "access_denied" # /authorize redirects back with ?error=…&state=…
    idp.rotate_keys()                     # new key and kid; the old kid leaves the JWKS (keep_old=True keeps it)

Signing uses the `cryptography` package (Debian: python3-cryptography); alg="RS256" (default) or "ES256".
Run this file directly for a self-check that exercises every endpoint.
"""
import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_bytes(n: int, length: int = 0) -> bytes:
    return n.to_bytes(length or max(1, (n.bit_length() + 7) // 8), "big")


class SigningKey:
    """A private key with its kid and alg, able to sign a JWS and describe its public JWK."""

    def __init__(self, alg: str, kid: str):
        self.alg = alg
        self.kid = kid
        if alg == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"unsupported alg {alg}")

    def jwk(self) -> dict:
        pub = self.private.public_key().public_numbers()
        if self.alg == "RS256":
            return {"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
                    "n": b64url(_int_bytes(pub.n)), "e": b64url(_int_bytes(pub.e))}
        return {"kty": "EC", "kid": self.kid, "alg": "ES256", "use": "sig", "crv": "P-256",
                "x": b64url(_int_bytes(pub.x, 32)), "y": b64url(_int_bytes(pub.y, 32))}

    def sign_jwt(self, claims: dict, kid: str = None) -> str:
        header = {"alg": self.alg, "typ": "JWT", "kid": kid if kid is not None else self.kid}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode())).encode("ascii")
        if self.alg == "RS256":
            sig = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = _int_bytes(r, 32) + _int_bytes(s, 32)  # JWS wants R || S, not DER
        return signing_input.decode("ascii") + "." + b64url(sig)


class OidcProvider:
    def __init__(self, client_id="lathe", client_secret="lathe-test-secret", alg="RS256", token_ttl_s=300,
                 host="127.0.0.1", port=0):
        self.client_id = client_id
        self.client_secret = client_secret
        self.alg = alg
        self.token_ttl_s = token_ttl_s
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._key_serial = 0
        self.signing_key = self._new_key()
        self.published_keys = [self.signing_key]
        self._unpublished_key = None
        self._codes = {}          # code -> pending login
        self._access_tokens = {}  # access token -> claims
        self._user = None
        self.authorize_requests = []
        self.token_requests = []
        self._server = None
        self._thread = None
        self.reset()

    # ---- lifecycle ----

    def start(self):
        provider = self

        class Handler(_Handler):
            pass
        Handler.provider = provider
        self._server = http.server.ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- addresses ----

    @property
    def issuer(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def discovery_url(self):
        return self.issuer + "/.well-known/openid-configuration"

    @property
    def authorization_endpoint(self):
        return self.issuer + "/authorize"

    @property
    def token_endpoint(self):
        return self.issuer + "/token"

    @property
    def jwks_uri(self):
        return self.issuer + "/jwks"

    @property
    def userinfo_endpoint(self):
        return self.issuer + "/userinfo"

    # ---- test controls ----

    def next_login(self, sub, preferred_username=None, email=None, groups=None, name=None, **claims):
        """The user /authorize logs in from now on (until the next call). Extra keyword args become claims."""
        user = {"sub": sub}
        if preferred_username is not None:
            user["preferred_username"] = preferred_username
        if email is not None:
            user["email"] = email
            user["email_verified"] = True
        if name is not None:
            user["name"] = name
        if groups is not None:
            # A list becomes a JSON array; a string stays a string (the "a, b c" form some providers send).
            user["groups"] = groups if isinstance(groups, str) else list(groups)
        user.update(claims)
        with self._lock:
            self._user = user

    def reset(self):
        """Clears every negative-test knob (keys stay as they are)."""
        self.sign_with_unpublished_key = False
        self.audience = None
        self.azp = None
        self.expired = False
        self.nonce_override = None
        self.issuer_override = None
        self.discovery_issuer = None
        self.extra_claims = {}
        self.authorize_error = None

    def rotate_keys(self, keep_old=False):
        """A new signing key with a new kid; the old one leaves the JWKS unless keep_old."""
        with self._lock:
            self.signing_key = self._new_key()
            self.published_keys = (self.published_keys if keep_old else []) + [self.signing_key]
            return self.signing_key.kid

    def jwks(self) -> dict:
        with self._lock:
            return {"keys": [k.jwk() for k in self.published_keys]}

    def discovery(self) -> dict:
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.jwks_uri,
            "userinfo_endpoint": self.userinfo_endpoint,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.alg],
            "scopes_supported": ["openid", "profile", "email", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
        }

    def make_id_token(self, user: dict, nonce: str = None) -> str:
        """An id token for `user` as /token would issue it now (knobs applied). Handy for unit-ish tests."""
        now = int(time.time())
        claims = dict(user)
        claims.update({
            "iss": self.issuer_override or self.issuer,
            "aud": self.audience if self.audience is not None else self.client_id,
            "iat": now - 3600 if self.expired else now,
            "exp": now - 3000 if self.expired else now + self.token_ttl_s,
            "auth_time": now,
        })
        if self.azp is not None:
            claims["azp"] = self.azp
        nonce = self.nonce_override if self.nonce_override is not None else nonce
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(self.extra_claims)
        if self.sign_with_unpublished_key:
            with self._lock:
                if self._unpublished_key is None or self._unpublished_key.alg != self.alg:
                    self._unpublished_key = SigningKey(self.alg, "unpublished")
                kid = self.signing_key.kid
            return self._unpublished_key.sign_jwt(claims, kid=kid)
        return self.signing_key.sign_jwt(claims)

    # ---- internals ----

    def _new_key(self):
        self._key_serial += 1
        return SigningKey(self.alg, f"key-{self._key_serial}-{secrets.token_hex(4)}")


class _Handler(http.server.BaseHTTPRequestHandler):
    provider: OidcProvider = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    # ---- responses ----

    def _send(self, status, body: bytes, content_type="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, obj, headers=None):
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _oauth_error(self, status, error, description, headers=None):
        self._json(status, {"error": error, "error_description": description}, headers)

    def _redirect(self, url):
        self.send_response(302)
        self.send_header("Location", url)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # ---- routes ----

    def do_GET(self):
        p = self.provider
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/.well-known/openid-configuration":
            return self._json(200, p.discovery())
        if url.path == "/jwks":
            return self._json(200, p.jwks())
        if url.path == "/authorize":
            return self._authorize(urllib.parse.parse_qs(url.query, keep_blank_values=True))
        if url.path == "/userinfo":
            auth = self.headers.get("Authorization", "")
            with p._lock:
                claims = p._access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
            if claims is None:
                return self._json(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return self._json(200, claims)
        self._json(404, {"error": "not_found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if urllib.parse.urlsplit(self.path).path == "/token":
            return self._token(body)
        self._json(404, {"error": "not_found"})

    def _authorize(self, q):
        p = self.provider
        params = {k: v[0] for k, v in q.items()}
        p.authorize_requests.append(params)
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return self._send(400, b"redirect_uri missing or not http(s)", "text/plain")
        if params.get("client_id") != p.client_id:
            return self._send(400, b"unknown client_id", "text/plain")  # never redirect for a bad client

        def back(**kv):
            if "state" in params:
                kv["state"] = params["state"]
            sep = "&" if urllib.parse.urlsplit(redirect_uri).query else "?"
            self._redirect(redirect_uri + sep + urllib.parse.urlencode(kv))

        if p.authorize_error:
            return back(error=p.authorize_error, error_description="the test provider was told to refuse")
        if params.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="only code")
        if "openid" not in params.get("scope", "").split():
            return back(error="invalid_scope", error_description="scope must contain openid")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return back(error="invalid_request", error_description="PKCE S256 code_challenge required")
        code = secrets.token_urlsafe(24)
        with p._lock:
            user = dict(p._user) if p._user else None
            if user is not None:
                p._codes[code] = {"user": user, "redirect_uri": redirect_uri, "nonce": params.get("nonce"),
                                  "code_challenge": params["code_challenge"], "scope": params.get("scope"),
                                  "expires": time.time() + 60}
        if user is None:
            return back(error="access_denied", error_description="no user configured (call next_login)")
        back(code=code)

    def _token(self, body):
        p = self.provider
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        record = {"form": form, "client_id": None, "status": None, "error": None}
        p.token_requests.append(record)

        def fail(status, error, description, headers=None):
            record["status"], record["error"] = status, error
            self._oauth_error(status, error, description, headers)

        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return fail(400, "invalid_request", "body must be application/x-www-form-urlencoded")
        # client_secret_basic (RFC 6749 §2.3.1): both parts form-urlencoded inside Basic.
        auth = self.headers.get("Authorization", "")
        client_id = secret = None
        if auth.startswith("Basic "):
            try:
                raw = base64.b64decode(auth[6:], validate=True).decode("utf-8")
                user, _, pw = raw.partition(":")
                client_id, secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw)
            except (ValueError, UnicodeDecodeError):
                pass
        record["client_id"] = client_id
        if client_id != p.client_id or secret is None or not secrets.compare_digest(secret, p.client_secret):
            return fail(401, "invalid_client", "client authentication failed",
                        {"WWW-Authenticate": 'Basic realm="oidc-provider"'})
        if "client_id" in form and form["client_id"] != client_id:
            return fail(400, "invalid_request", "client_id does not match the authenticated client")
        if form.get("grant_type") != "authorization_code":
            return fail(400, "unsupported_grant_type", "only authorization_code")
        with p._lock:
            pending = p._codes.pop(form.get("code", ""), None)  # single use, even when the rest fails
        if pending is None or pending["expires"] < time.time():
            return fail(400, "invalid_grant", "unknown, expired or already used code")
        if form.get("redirect_uri") != pending["redirect_uri"]:
            return fail(400, "invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest()) != pending["code_challenge"]:
            return fail(400, "invalid_grant", "PKCE code_verifier does not match the code_challenge")
        id_token = p.make_id_token(pending["user"], pending["nonce"])
        access_token = secrets.token_urlsafe(32)
        with p._lock:
            p._access_tokens[access_token] = pending["user"]
        record["status"] = 200
        self._json(200, {"id_token": id_token, "access_token": access_token, "token_type": "Bearer",
                         "expires_in": p.token_ttl_s, "scope": pending["scope"]})


def _self_check():
    """Exercises every endpoint with urllib, the way lathe's client will (no redirects followed)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)

    def get(url):
        try:
            with opener.open(url) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def post_token(form, client=("lathe", "lathe-test-secret")):
        body = urllib.parse.urlencode(form).encode()
        creds = urllib.parse.quote_plus(client[0]) + ":" + urllib.parse.quote_plus(client[1])
        req = urllib.request.Request(p.token_endpoint, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(creds.encode()).decode()})
        try:
            with opener.open(req) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def verify(token, key):
        h, c, s = token.split(".")
        sig = b64url_decode(s)
        data = (h + "." + c).encode()
        pub = key.private.public_key()
        if key.alg == "RS256":
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
            pub.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                       data, ec.ECDSA(hashes.SHA256()))
        return json.loads(b64url_decode(h)), json.loads(b64url_decode(c))

    def login(verifier="v" * 43, nonce="n-1", state="s 1/&"):
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        q = urllib.parse.urlencode({"response_type": "code", "client_id": "lathe", "scope": "openid email",
                                    "redirect_uri": "http://127.0.0.1:9/cb?x=1", "state": state,
                                    "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"})
        status, headers, _ = get(p.authorization_endpoint + "?" + q)
        assert status == 302, status
        loc = urllib.parse.urlsplit(headers["Location"])
        back = dict(urllib.parse.parse_qsl(loc.query))
        assert back["x"] == "1" and back["state"] == state, back
        return back

    for alg in ("RS256", "ES256"):
        with OidcProvider(alg=alg) as p:
            status, _, body = get(p.discovery_url)
            assert status == 200 and json.loads(body)["issuer"] == p.issuer
            assert json.loads(get(p.jwks_uri)[2])["keys"][0]["kid"] == p.signing_key.kid

            assert "error" in login()  # nobody configured yet
            p.next_login(sub="u-1", preferred_username="ann", email="ann@example.com", groups=["ml", "ops"])
            code = login()["code"]
            assert p.authorize_requests[-1]["nonce"] == "n-1"
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/cb?x=1",
                    "code_verifier": "w" * 43}
            assert post_token(form) == (400, {"error": "invalid_grant", "error_description":
                                             "PKCE code_verifier does not match the code_challenge"})
            form["code"] = login()["code"]
            form["code_verifier"] = "v" * 43
            assert post_token(form, ("lathe", "wrong"))[0] == 401
            status, tok = post_token(form)
            assert status == 200, tok
            assert tok["token_type"] == "Bearer" and tok["expires_in"] == 300
            header, claims = verify(tok["id_token"], p.signing_key)
            assert header["alg"] == alg and header["kid"] == p.signing_key.kid
            assert claims["sub"] == "u-1" and claims["aud"] == "lathe" and claims["nonce"] == "n-1"
            assert claims["groups"] == ["ml", "ops"] and claims["iss"] == p.issuer
            assert post_token(form)[1]["error"] == "invalid_grant"  # single use
            req = urllib.request.Request(p.userinfo_endpoint, headers={"Authorization": "Bearer " + tok["access_token"]})
            with opener.open(req) as r:
                assert json.loads(r.read())["email"] == "ann@example.com"

            # Knobs.
            p.expired, p.audience, p.nonce_override = True, "other", "bad"
            form["code"] = login()["code"]
            _, claims = verify(post_token(form)[1]["id_token"], p.signing_key)
            assert claims["exp"] < time.time() and claims["aud"] == "other" and claims["nonce"] == "bad"
            p.reset()
            p.sign_with_unpublished_key = True
            form["code"] = login()["code"]
            bad = post_token(form)[1]["id_token"]
            try:
                verify(bad, p.signing_key)
                raise AssertionError("unpublished key verified")
            except Exception as e:  # cryptography's InvalidSignature
                assert type(e).__name__ == "InvalidSignature", e
            p.reset()
            old = p.signing_key.kid
            new = p.rotate_keys()
            kids = [k["kid"] for k in json.loads(get(p.jwks_uri)[2])["keys"]]
            assert kids == [new] and old != new
            form["code"] = login()["code"]
            header, _ = verify(post_token(form)[1]["id_token"], p.signing_key)
            assert header["kid"] == new
            p.authorize_error = "access_denied"
            assert login()["error"] == "access_denied"
    print("oidc_provider self-check: ok")


if __name__ == "__main__":
    _self_check()
