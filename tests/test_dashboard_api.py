"""The dashboard's JSON API, push stream and page against a live engine on the real
local sources: every endpoint, the token and origin rules, switching a source in the
engine, and minting a bundle that chaosmagnet's own verifier accepts."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from chaosmagnet.dashboard import TOKEN_HEADER
from chaosmagnet.minting.bundle import verify_bundle
from chaosmagnet.minting.identity import identity_dir, load_identity_public
from dashboard_helpers import TOKEN, running_dashboard

LONG_HEX = re.compile(r"[0-9a-f]{40,}")  # pool state, seeds or keys would show up as long hex runs


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> None:
    """Poll until predicate() is true (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


def control_headers(base: str, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    headers = {"Origin": base.rstrip("/"), "Content-Type": "application/json"}
    if token is not None:
        headers[TOKEN_HEADER] = token
    headers.update(extra)
    return headers


def no_secret_key_fields(value: Any) -> bool:
    if isinstance(value, dict):
        return "secret_key" not in value and all(no_secret_key_fields(v) for v in value.values())
    if isinstance(value, list):
        return all(no_secret_key_fields(v) for v in value)
    return True


# -- reads ---------------------------------------------------------------------------
def test_reads_page_and_static(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            base = server.url
            await asyncio.sleep(2.5)  # two engine ticks: chart history exists
            async with http.get(base) as r:
                assert r.status == 200
                assert r.content_type == "text/html"
                page = await r.text()
                assert '<script type="module" src="/static/app.js">' in page
                assert "script-src 'self'" in r.headers["Content-Security-Policy"]
                assert r.headers["X-Frame-Options"] == "DENY"
                assert r.headers["Referrer-Policy"] == "no-referrer"
            for name, kind in (
                ("app.js", "text/javascript"),
                ("chart.js", "text/javascript"),
                ("style.css", "text/css"),
            ):
                async with http.get(base + "static/" + name) as r:
                    assert r.status == 200 and r.content_type == kind
            for bad in (
                "static/index.htm",
                "static/..%2Fserver.py",
                "static/nope.js",
                "nothing-here",
            ):
                async with http.get(base + bad) as r:
                    assert r.status == 404, bad

            async with http.get(base + "api/status") as r:
                assert r.status == 200
                status = await r.json()
            names = {s["name"] for s in status["sources"]}
            assert names == {"os-rng", "cpu-jitter", "system"}
            assert re.fullmatch(r"[0-9a-f]{16}", status["pool"]["fingerprint"])
            assert status["pool"]["capacity_bits"] == engine.pool.capacity_bits
            assert set(status["pool"]["output"]) >= {
                "seeded",
                "samples",
                "h_min",
                "h_shannon",
                "h_collision",
            }
            assert status["nodes"] == []
            assert status["mint"]["available"] is True
            assert "ML-KEM-768" in {a["name"] for a in status["mint"]["algorithms"]["kem"]}

            async with http.get(base + "api/sources") as r:
                rows = (await r.json())["sources"]
            assert [row["name"] for row in rows] == [s["name"] for s in status["sources"]]
            async with http.get(base + "api/sources/cpu-jitter") as r:
                row = await r.json()
                assert row["name"] == "cpu-jitter" and row["kind"] == "local" and row["samples"] > 0
            async with http.get(base + "api/sources/no-such-source") as r:
                assert r.status == 404

            async with http.get(base + "api/history") as r:
                history = await r.json()
            jitter = history["sources"]["cpu-jitter"]
            assert len(jitter) >= 2 and jitter[-1]["t"] > jitter[0]["t"]
            assert {"t", "h_min", "h_shannon", "h_collision"} <= set(jitter[-1])
            assert len(history["pool"]) >= 2 and "credited_bits" in history["pool"][-1]

            async with http.get(base + "api/dependence") as r:
                dependence = await r.json()
            # os-rng is conditioned (credited 0), so cpu-jitter and system make the one pair tracked
            assert dependence["schedule"]["sources"] == 2 and dependence["schedule"]["pairs"] == 1
            assert dependence["groups"] == [] and status["dependence"]["groups"] == []
            assert all(s["dependence"] is None for s in status["sources"])

            async with http.get(base + "api/log") as r:
                assert isinstance((await r.json())["events"], list)
            async with http.get(base + "api/audit") as r:
                assert await r.json() == {"present": False, "entries": []}
            async with http.get(base + "api/bundles") as r:
                assert await r.json() == {"bundles": []}
            async with http.get(base + "api/mint") as r:
                mint = await r.json()
                assert mint["identity"]["exists"] is False and mint["busy"] is False

            # nothing secret: no long hex run (pool state, seed, key) in any read
            for path in ("api/status", "api/sources", "api/history", "api/dependence", "metrics"):
                async with http.get(base + path) as r:
                    body = await r.text()
                    assert not LONG_HEX.search(body), path
                    assert "Access-Control-Allow-Origin" not in r.headers

    run(scenario())


def test_conditioned_output_probe_measures_pool_output(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            await wait_for(lambda: server.live.probe.bytes_measured >= 3 * 4096)
            async with http.get(server.url + "api/status") as r:
                output = (await r.json())["pool"]["output"]
            assert output["seeded"] is True and output["samples"] >= 3 * 4096
            # SHAKE output: near 8 bits per byte; the 99% bound keeps the MCV estimate a bit lower
            assert 7.9 < output["h_shannon"] <= 8.0
            assert 6.0 < output["h_min"] < 8.0
            assert (
                engine.pool.stats.drawn_bits >= 256
            )  # the probe's one seed, debited like any draw

    run(scenario())


# -- switching sources -------------------------------------------------------------------
def test_toggle_refused_without_token_or_from_another_origin(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            url = server.url + "api/sources/cpu-jitter"
            body = json.dumps({"enabled": False})
            refusals = [
                (control_headers(server.url, token=None), 403),
                (control_headers(server.url, token="wrong-" + TOKEN), 403),
                (control_headers(server.url, Origin="http://evil.example"), 403),
                (control_headers(server.url, Origin="null"), 403),
                (control_headers(server.url, **{"Sec-Fetch-Site": "cross-site"}), 403),
                (control_headers(server.url, **{"Sec-Fetch-Site": "same-site"}), 403),
                (control_headers(server.url, Host="evil.example:80"), 403),
                (control_headers(server.url, **{"Content-Type": "text/plain"}), 415),
            ]
            for headers, expected in refusals:
                async with http.post(url, data=body, headers=headers) as r:
                    assert r.status == expected, headers
                    assert "error" in await r.json()
                    assert "Access-Control-Allow-Origin" not in r.headers
            async with http.options(
                url,
                headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
            ) as r:
                assert r.status == 405
                assert not any(h.lower().startswith("access-control-") for h in r.headers)
            # reads from a foreign page are refused too (DNS rebinding, cross-origin fetch)
            async with http.get(
                server.url + "api/status", headers={"Host": "evil.example:80"}
            ) as r:
                assert r.status == 403
            async with http.get(
                server.url + "api/status", headers={"Origin": "http://evil.example"}
            ) as r:
                assert r.status == 403
            state = engine.source_states()["cpu-jitter"]
            assert state["enabled"] is True and state["state"] != "stopped"

    run(scenario())


def test_toggle_switches_the_source_in_the_engine(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            url = server.url + "api/sources/cpu-jitter"
            headers = control_headers(server.url)
            await wait_for(lambda: engine.source_states()["cpu-jitter"]["samples"] > 0)
            async with http.post(url, data=json.dumps({"enabled": False}), headers=headers) as r:
                assert r.status == 200
                row = await r.json()
            assert row["enabled"] is False and row["state"] == "stopped"
            assert engine.source_states()["cpu-jitter"]["state"] == "stopped"
            frozen = engine.source_states()["cpu-jitter"]["samples"]
            await asyncio.sleep(1.0)
            assert engine.source_states()["cpu-jitter"]["samples"] == frozen  # really stopped
            async with http.get(server.url + "api/log") as r:
                events = (await r.json())["events"]
            assert any(
                e["event"] == "source_state"
                and e["fields"]["source"] == "cpu-jitter"
                and e["fields"]["state"] == "stopped"
                for e in events
            )

            async with http.post(url, data=json.dumps({"enabled": True}), headers=headers) as r:
                assert r.status == 200 and (await r.json())["enabled"] is True
            await wait_for(lambda: engine.source_states()["cpu-jitter"]["samples"] > frozen)
            assert engine.source_states()["cpu-jitter"]["state"] in ("ok", "starting")

            for data, expected in (('{"enabled": "no"}', 400), ("not json", 400), ("[true]", 400)):
                async with http.post(url, data=data, headers=headers) as r:
                    assert r.status == expected, data
            async with http.post(
                server.url + "api/sources/nope", data='{"enabled": false}', headers=headers
            ) as r:
                assert r.status == 404
            async with http.post(
                url + "/clear", data="{}", headers=control_headers(server.url, token=None)
            ) as r:
                assert r.status == 403
            async with http.post(url + "/clear", data="{}", headers=headers) as r:
                assert r.status == 200 and (await r.json())["name"] == "cpu-jitter"

    run(scenario())


# -- push stream ---------------------------------------------------------------------
async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    """The data of the next ``count`` SSE messages."""
    events: list[dict[str, Any]] = []
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            events.append(json.loads("\n".join(data)))
            data = []
            if len(events) == count:
                break
    return events


def test_event_stream_pushes_updates(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            async with http.get(server.url + "api/events") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/event-stream")
                events = await asyncio.wait_for(read_events(r, 3), timeout=30)
            first, last = events[0]["status"], events[-1]["status"]
            assert last["time"] > first["time"]
            samples = lambda s: {row["name"]: row["samples"] for row in s["sources"]}  # noqa: E731
            assert samples(last)["cpu-jitter"] > samples(first)["cpu-jitter"]
            assert all(set(e) == {"status", "log", "audit"} for e in events)
            assert "cpu-jitter" in last["latest"] and "t" in last["latest"]["cpu-jitter"]
            async with http.get(
                server.url + "api/events", headers={"Origin": "http://evil.example"}
            ) as r:
                assert r.status == 403
            async with http.get(server.url + "api/events?log_after=x") as r:
                assert r.status == 400

    run(scenario())


# -- minting ---------------------------------------------------------------------------
def test_mint_refusals(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            url = server.url + "api/mint"
            body = json.dumps(
                {"kem": "ML-KEM-768", "passphrase": "pw-one-is-long", "passphrase_confirm": "pw-one-is-long"}
            )
            for headers in (
                control_headers(server.url, token=None),
                control_headers(server.url, token="nope-" + TOKEN),
                control_headers(server.url, Origin="http://evil.example"),
                control_headers(server.url, **{"Sec-Fetch-Site": "cross-site"}),
            ):
                async with http.post(url, data=body, headers=headers) as r:
                    assert r.status == 403, headers
            headers = control_headers(server.url)
            cases = [
                ({"kem": "ML-KEM-768"}, "CHAOS_PASSPHRASE"),  # no passphrase anywhere
                (
                    {"kem": "ML-KEM-768", "passphrase": "pw-one-is-long", "passphrase_confirm": "pw-two-is-long"},
                    "twice",
                ),
                (
                    {"kem": "ML-KEM-768", "passphrase": "pw-one-is-long"},
                    "twice",
                ),  # first use: confirmation needed
                (
                    {"kem": "ML-DSA-65", "passphrase": "pw-one-is-long", "passphrase_confirm": "pw-one-is-long"},
                    "not a KEM",
                ),
                (
                    {"kem": "NO-SUCH-KEM", "passphrase": "pw-one-is-long", "passphrase_confirm": "pw-one-is-long"},
                    "NO-SUCH-KEM",
                ),
                ({"kem": 7}, "strings"),
                (
                    {"kem": "ML-KEM-768", "passphrase": "short", "passphrase_confirm": "short"},
                    "at least 12 characters",
                ),
            ]
            for payload, words in cases:
                async with http.post(url, data=json.dumps(payload), headers=headers) as r:
                    assert r.status == 400, payload
                    message = (await r.json())["error"]
                    assert words in message, message
                    assert "pw-one-is-long" not in message
            assert not (tmp_path / "keys").exists() or not any(
                (tmp_path / "keys").glob("bundle-*.json")
            )
            assert not (identity_dir(tmp_path / "keys") / "identity.json").exists()
            assert engine.pool.stats.draws <= 1  # at most the output probe's seed: no mint drew

    run(scenario())


def test_mint_lists_bundle_with_public_part(tmp_path: Path) -> None:
    passphrase = "correct horse battery staple 42"

    async def scenario() -> None:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            url = server.url + "api/mint"
            headers = control_headers(server.url)
            responses: list[str] = []
            payload = {
                "kem": "ML-KEM-768",
                "passphrase": passphrase,
                "passphrase_confirm": passphrase,
            }
            async with http.post(url, data=json.dumps(payload), headers=headers) as r:
                responses.append(await r.text())
                assert r.status == 201, responses[-1]
                first = json.loads(responses[-1])
            assert first["kem"] == "ML-KEM-768" and first["seeded_from_pool"] is True
            assert first["credited_bits_drawn"] >= 384
            assert first["public_url"] == f"/api/bundles/{first['id']}/public"

            # a second one with the server's passphrase, and a signing key pair
            server.minting.environ = lambda: {"CHAOS_PASSPHRASE": passphrase}  # type: ignore[union-attr]
            payload = {"kem": "ML-KEM-768", "sign_keypair": "ML-DSA-65", "passphrase": ""}
            async with http.post(url, data=json.dumps(payload), headers=headers) as r:
                responses.append(await r.text())
                assert r.status == 201, responses[-1]
                second = json.loads(responses[-1])
            assert second["signing_key"] == "ML-DSA-65"
            payload = {"kem": "ML-KEM-768", "passphrase": "a wrong passphrase"}
            async with http.post(url, data=json.dumps(payload), headers=headers) as r:
                responses.append(await r.text())
                assert r.status == 400 and "wrong passphrase" in responses[-1]

            async with http.get(server.url + "api/bundles") as r:
                responses.append(await r.text())
                listed = json.loads(responses[-1])["bundles"]
            assert {b["id"] for b in listed} == {first["id"], second["id"]}
            for bundle in listed:
                async with http.get(server.url + bundle["public_url"].lstrip("/")) as r:
                    responses.append(await r.text())
                    assert r.status == 200
                    public = json.loads(responses[-1])
                assert public["id"] == bundle["id"] and no_secret_key_fields(public)
                stored = json.loads((tmp_path / "keys" / f"bundle-{bundle['id']}.json").read_text())
                assert public["kem"]["public_key"] == stored["kem"]["public_key"]
                assert len(bytes.fromhex(public["kem"]["public_key"])) == 1184  # ML-KEM-768
                assert public["signatures"] == stored["signatures"]
                assert "sealed" in stored["kem"]["secret_key"]  # the file keeps it, sealed
            for bad in ("not-a-uuid", "00000000-0000-4000-8000-000000000000", "..%2Fidentity"):
                async with http.get(server.url + f"api/bundles/{bad}/public") as r:
                    assert r.status == 404, bad

            async with http.get(server.url + "api/mint") as r:
                mint = await r.json()
            assert mint["identity"]["exists"] is True and mint["minted"] == 2
            await wait_for(  # both mints: the live view reads the audit trail as it grows
                lambda: sum(e["event"] == "mint" for e in server.live.audit_after(0)) >= 2, 10
            )
            async with http.get(server.url + "api/audit") as r:
                responses.append(await r.text())
                audit = json.loads(responses[-1])
            events = [e["event"] for e in audit["entries"]]
            assert audit["present"] and events.count("mint") == 2 and "identity_created" in events
            assert all(e["signed"] for e in audit["entries"])

        # the bundles verify with chaosmagnet's own verifier: signatures and audit entry
        public_identity = load_identity_public(identity_dir(tmp_path / "keys"))
        for bundle_id in (first["id"], second["id"]):
            report = verify_bundle(
                tmp_path / "keys" / f"bundle-{bundle_id}.json",
                public_identity,
                audit_log=tmp_path / "logs" / "audit.jsonl",
            )
            assert report.ok, report.problems
        # the passphrase is nowhere: not in any response, log or key file
        assert all(passphrase not in text for text in responses)
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert passphrase.encode() not in path.read_bytes(), path

    run(scenario())


def test_only_one_mint_at_a_time(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            url = server.url + "api/mint"
            headers = control_headers(server.url)
            payload = json.dumps(
                {"kem": "ML-KEM-768", "passphrase": "pw long enough", "passphrase_confirm": "pw long enough"}
            )

            async def mint() -> tuple[int, str]:
                async with http.post(url, data=payload, headers=headers) as r:
                    return r.status, await r.text()

            results = await asyncio.gather(mint(), mint())
            statuses = sorted(status for status, _ in results)
            assert statuses == [201, 400], results
            assert "already under way" in next(text for status, text in results if status == 400)

    run(scenario())


def test_unknown_methods_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_dashboard(tmp_path) as (engine, server), aiohttp.ClientSession() as http:
            for path in ("api/status", "metrics", "api/bundles", "api/sources/cpu-jitter"):
                async with http.put(
                    server.url + path, data="{}", headers=control_headers(server.url)
                ) as r:
                    assert r.status == 405, path
                async with http.delete(server.url + path, headers=control_headers(server.url)) as r:
                    assert r.status == 405, path
            assert engine.source_states()["cpu-jitter"]["enabled"] is True

    run(scenario())
