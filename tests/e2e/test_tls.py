"""HTTPS: `lathe serve --tls-self-signed` serves TLS 1.2+ only with HSTS, the whole API works over it, plain
HTTP on the port gets a 400 saying so, TLS 1.1 is refused, and bad certificate files stop the server with a
clear message."""
import socket
import warnings
import ssl
import subprocess

import pytest
import requests

from conftest import ADMIN_PASSWORD, LATHE_BIN, Server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("tls"), extra_args=["--tls-self-signed"]).start()
    yield s
    s.stop()


def test_api_over_https_with_hsts(tls_server):
    ca = tls_server.verify()
    r = requests.post(tls_server.url + "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD},
                      verify=ca, timeout=30)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    r = requests.get(tls_server.url + "/api/v1/projects/default/datasets", headers={"Authorization": f"Bearer {token}"},
                     verify=ca, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
    # The certificate names localhost too, and a client that does not trust it refuses the connection.
    port = tls_server.url.rsplit(":", 1)[1]
    assert requests.get(f"https://localhost:{port}/healthz", verify=ca, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_server.url + "/healthz", timeout=10)


def test_plain_http_on_the_tls_port_gets_a_clear_400(tls_server):
    port = int(tls_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400"), data
    assert b"https://" in data
    # The server is still up.
    assert requests.get(tls_server.url + "/healthz", verify=tls_server.verify(), timeout=10).status_code == 200


def handshake(port, version, cafile):
    warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.set_ciphers("DEFAULT@SECLEVEL=0")  # let the client offer old versions: the server must refuse them
    ctx.minimum_version = version
    ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version()


def test_tls_1_1_is_refused_and_1_2_accepted(tls_server):
    port = int(tls_server.url.rsplit(":", 1)[1])
    assert handshake(port, ssl.TLSVersion.TLSv1_2, tls_server.verify()) == "TLSv1.2"
    # The server answers with a protocol_version alert (the client did offer TLS 1.1).
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        handshake(port, ssl.TLSVersion.TLSv1_1, tls_server.verify())


def test_bad_certificate_files_stop_the_server_with_a_clear_message(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    out = subprocess.run([LATHE_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                          "--tls-cert", str(bad), "--tls-key", str(bad)],
                         capture_output=True, text=True, timeout=60, env={"LATHE_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert out.returncode != 0
    assert "bad.pem" in out.stdout + out.stderr
    out = subprocess.run([LATHE_BIN, "serve", "--tls-self-signed", "--tls-cert", str(bad), "--data-dir",
                          str(tmp_path / "d")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "exclude each other" in out.stderr


def test_cli_over_https_trusts_lathe_ca_cert(tls_server, tmp_path):
    env = {"HOME": str(tmp_path), "LATHE_URL": tls_server.url, "PATH": "/usr/bin:/bin"}
    untrusted = subprocess.run([LATHE_BIN, "login", "--password-stdin"], input=ADMIN_PASSWORD + "\n",
                               capture_output=True, text=True, timeout=60, env=env)
    assert untrusted.returncode != 0
    env["LATHE_CA_CERT"] = tls_server.verify()
    ok = subprocess.run([LATHE_BIN, "login", "--password-stdin"], input=ADMIN_PASSWORD + "\n",
                        capture_output=True, text=True, timeout=60, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    listed = subprocess.run([LATHE_BIN, "datasets", "list", "--json"], capture_output=True, text=True, timeout=60,
                            env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
