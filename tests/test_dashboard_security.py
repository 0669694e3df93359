"""The dashboard's listen-address and request rules, without a server."""

from __future__ import annotations

import pytest
from chaosmagnet.websecurity import (
    TOKEN_HEADER,
    ListenAddress,
    RequestGuard,
    check_listen,
    may_send_passphrase,
    new_token,
    parse_listen,
)
from chaosmagnet.errors import UsageError

LISTEN_CASES = [
    ("127.0.0.1:8765", ListenAddress("127.0.0.1", 8765), True),
    ("localhost:0", ListenAddress("localhost", 0), True),
    ("[::1]:9000", ListenAddress("::1", 9000), True),
    ("127.3.2.1:80", ListenAddress("127.3.2.1", 80), True),
    ("0.0.0.0:8765", ListenAddress("0.0.0.0", 8765), False),
    ("[::]:8765", ListenAddress("::", 8765), False),
    ("192.0.2.7:8765", ListenAddress("192.0.2.7", 8765), False),
    ("dashboard.example:8765", ListenAddress("dashboard.example", 8765), False),
]


@pytest.mark.parametrize(("text", "address", "loopback"), LISTEN_CASES)
def test_parse_listen(text: str, address: ListenAddress, loopback: bool) -> None:
    assert parse_listen(text) == address
    assert address.loopback is loopback


@pytest.mark.parametrize(
    "text",
    [
        "8765",
        "127.0.0.1",
        ":8765",
        "127.0.0.1:http",
        "127.0.0.1:70000",
        "::1:8765",
        "[::1]8765",
        "host/x:80",
        "a b:80",
        "127.0.0.1:-1",
    ],
)
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="--listen"):
        parse_listen(text)


def test_remote_listen_needs_allow_remote() -> None:
    assert check_listen(parse_listen("127.0.0.1:1"), allow_remote=False) is None
    assert check_listen(parse_listen("[::1]:1"), allow_remote=True) is None
    for text in ("0.0.0.0:8765", "192.0.2.7:8765"):
        with pytest.raises(UsageError, match="--allow-remote"):
            check_listen(parse_listen(text), allow_remote=False)
        warning = check_listen(parse_listen(text), allow_remote=True)
        assert warning is not None and warning.startswith("warning:")


def test_host_header_rules() -> None:
    guard = RequestGuard(new_token(), ListenAddress("127.0.0.1", 0))
    guard.set_port(8765)
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST:8765"):
        assert guard.host_refusal({"Host": host}) is None, host
    for host in ("", "127.0.0.1:8766", "evil.example:8765", "127.0.0.1", "attacker.example"):
        assert guard.host_refusal({"Host": host}) is not None, host
    remote = RequestGuard(new_token(), ListenAddress("192.0.2.7", 8765))
    assert remote.host_refusal({"Host": "192.0.2.7:8765"}) is None
    assert remote.host_refusal({"Host": "localhost:8765"}) is not None
    anywhere = RequestGuard(new_token(), ListenAddress("0.0.0.0", 8765))
    assert anywhere.allowed_hosts() is None
    assert anywhere.host_refusal({"Host": "box.lan:8765"}) is None


def test_origin_and_token_rules() -> None:
    token = new_token()
    guard = RequestGuard(token, ListenAddress("127.0.0.1", 8765))
    host = {"Host": "127.0.0.1:8765"}
    assert guard.origin_refusal(host) is None  # curl, Prometheus: no browser headers
    assert guard.origin_refusal({**host, "Origin": "http://127.0.0.1:8765"}) is None
    assert guard.origin_refusal({**host, "Sec-Fetch-Site": "same-origin"}) is None
    assert guard.origin_refusal({**host, "Sec-Fetch-Site": "none"}) is None
    for extra in (
        {"Origin": "http://127.0.0.1:8766"},
        {"Origin": "https://127.0.0.1:8765"},
        {"Origin": "null"},
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        assert guard.origin_refusal({**host, **extra}) is not None, extra
    assert guard.token_valid({TOKEN_HEADER: token})
    assert not guard.token_valid({})
    assert not guard.token_valid({TOKEN_HEADER: token[:-1]})
    assert not guard.token_valid({TOKEN_HEADER: token + "x"})
    assert len(new_token()) >= 43 and new_token() != new_token()
    with pytest.raises(UsageError):
        RequestGuard("short", ListenAddress("127.0.0.1", 1))


def test_one_refusal_rule_for_every_page() -> None:
    """The dashboard and the fleet page apply the same rules, in this order."""
    token = new_token()
    guard = RequestGuard(token, ListenAddress("127.0.0.1", 8765), printed_by="the collector")
    ok = {"Host": "127.0.0.1:8765"}
    signed = {**ok, TOKEN_HEADER: token}
    json_type = "application/json"
    assert guard.refusal("GET", "/", ok, "") is None
    assert guard.refusal("GET", "/api/fleet", ok, "") is None
    assert guard.refusal("POST", "/api/x", signed, json_type) is None
    assert guard.refusal("GET", "/", {"Host": "evil.example:8765"}, "") == (403, "unexpected Host header")
    assert guard.refusal("DELETE", "/api/x", signed, json_type) == (405, "method not allowed")
    # cross-origin reads of the API are refused, the page itself may be linked to
    assert guard.refusal("GET", "/", {**ok, "Sec-Fetch-Site": "cross-site"}, "") is None
    assert guard.refusal("GET", "/metrics", {**ok, "Sec-Fetch-Site": "cross-site"}, "") == (
        403, "cross-origin request"
    )
    status, reason = guard.refusal("POST", "/api/x", ok, json_type) or (0, "")
    assert status == 403 and reason.endswith("open the link that the collector printed)")
    assert guard.refusal("POST", "/api/x", signed, "text/plain") == (
        415, "send JSON (Content-Type: application/json)"
    )


def test_typed_passphrases_only_over_loopback() -> None:
    for peer in ("127.0.0.1", "127.9.9.9", "::1", "localhost"):
        assert may_send_passphrase(peer), peer
    for peer in (None, "", "192.0.2.7", "10.0.0.1", "2001:db8::1", "0.0.0.0"):
        assert not may_send_passphrase(peer), peer
