# Host/Origin and bearer-token policy tests, on the MicroPython VM. Guard reads header fields as
# bytes by lower-case bytes name (as transport.http.Headers.raw serves them); a dict's get stands in.
from boardmcp.auth import Guard


def fields(headers):
    return {name: value.encode() for name, value in headers.items()}.get


def test_token_required_and_compared_exactly():
    g = Guard(token="s3cret")
    assert g.check(fields({b"authorization": "Bearer s3cret"})) is None
    assert g.check(fields({b"authorization": "bearer s3cret"})) is None
    assert g.check(fields({}))[0] == 401
    assert g.check(fields({b"authorization": "Bearer s3cre"}))[0] == 401
    assert g.check(fields({b"authorization": "Bearer S3CRET"}))[0] == 401
    assert g.check(fields({b"authorization": "Basic s3cret"}))[0] == 401
    assert Guard().check(fields({})) is None


def test_the_token_is_not_kept_in_the_clear():
    # Only a keyed digest of it: a dump of the guard's state does not show the token.
    g = Guard(token="s3cret")
    for value in g.__dict__.values():
        assert not (isinstance(value, bytes) and b"s3cret" in value)


def test_a_non_ascii_token_is_compared_as_utf8():
    # The comparison runs on bytes: a token set by hand in config.json may be any text.
    g = Guard(token="cl\u00e9-\u00fc")
    assert g.check(fields({b"authorization": "Bearer cl\u00e9-\u00fc"})) is None
    assert g.check(fields({b"authorization": "Bearer cle-u"}))[0] == 401
    assert g.check(fields({b"authorization": "Bearer cl\u00e9-\u00fc!"}))[0] == 401
    assert g.check(fields({b"authorization": "Bearer cl\u00e9"}))[0] == 401


def test_host_and_origin_block_dns_rebinding():
    g = Guard(hosts=("boardmcp-1a2b.local",))
    g.add_host("192.168.1.23")
    for host in ("127.0.0.1:8080", "localhost", "[::1]:80", "boardmcp-1a2b.local", "192.168.1.23:80"):
        assert g.check(fields({b"host": host})) is None, host
    assert g.check(fields({b"host": "evil.example.com"}))[0] == 403
    assert g.check(fields({b"host": "127.0.0.1", b"origin": "http://evil.example.com"}))[0] == 403
    assert g.check(fields({b"host": "127.0.0.1", b"origin": "http://127.0.0.1:8080"})) is None
    assert g.check(fields({b"host": "127.0.0.1", b"origin": "null"}))[0] == 403


def test_configured_origins():
    g = Guard(origins=("https://inspector.example",))
    assert g.check(fields({b"origin": "https://inspector.example/"})) is None
    assert g.check(fields({b"origin": "https://other.example"}))[0] == 403


def test_origin_checked_before_token():
    g = Guard(token="t")
    assert g.check(fields({b"host": "evil.example.com"}))[0] == 403
