"""SP 800-90B non-IID estimators (§6.3) against NIST's ea_non_iid, by hand, and on bad input.

The reference files live in tests/data/sp800-90b:
seven 1,000,000-sample files with ea_non_iid's JSON results and its verbose
output (intermediate values).  Every estimator must match within 1e-6 bits.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from chaosmagnet.assessment import suffix
from chaosmagnet.assessment._kernel import ffi, lib
from chaosmagnet.assessment.noniid import (
    ESTIMATORS,
    Z_ALPHA,
    assess_noniid,
    bitstring,
    collision_estimate,
    compression_estimate,
    markov_estimate,
    mcv_estimate,
    prediction_bound,
    tuple_estimates,
)
from chaosmagnet.assessment.samples import MIN_SAMPLES, infer_bits, load_samples
from chaosmagnet.errors import InputFileError, UsageError
from hypothesis import given, settings
from hypothesis import strategies as st

VECTORS = Path(__file__).resolve().parent / "data" / "sp800-90b"  # NIST ea_non_iid / ea_iid 1.1.7 outputs
REFERENCE_FILES = sorted(p.stem for p in VECTORS.glob("*.bin"))
assert REFERENCE_FILES, f"the reference vectors belong in {VECTORS}"

# ea_non_iid's test case names -> our estimator keys.
TOOL_NAMES = {
    "Most Common Value": "mcv",
    "Collision Test (for bit strings only)": "collision",
    "Markov Test (for bit strings only)": "markov",
    "Compression Test (for bit strings only)": "compression",
    "T-Tuple Test": "t_tuple",
    "LRS Test": "lrs",
    "Multi Most Common in Window Test": "multi_mcw",
    "Lag Prediction Test": "lag",
    "Multi Markov Model with Counting Test (MultiMMC)": "multi_mmc",
    "LZ78Y Test": "lz78y",
}

TOLERANCE = 1e-6  # bits; every estimator, including the bisection solves, meets it


@pytest.fixture(scope="module")
def assessed() -> dict[str, object]:
    """Each reference file assessed once (a couple of seconds per file)."""
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            sample_file = load_samples(VECTORS / f"{name}.bin")
            cache[name] = assess_noniid(sample_file.samples, sample_file.bits)
        return cache[name]

    return get  # type: ignore[return-value]


def _reference_values(name: str) -> dict[tuple[str, str], float]:
    """(estimator, 'original'|'bitstring') -> ea_non_iid's min-entropy."""
    ref = json.loads((VECTORS / f"{name}.reference.json").read_text())
    values: dict[tuple[str, str], float] = {}
    for case in ref["testCases"]:
        desc = case["testCaseDesc"]
        if desc == "Overall":
            values[("overall", "assessed")] = case["hAssessed"]
            values[("overall", "original")] = case["hOriginal"]
            if "hBitstring" in case:
                values[("overall", "bitstring")] = case["hBitstring"]
            values[("overall", "bits")] = case["dataWordSize"]
            continue
        key = TOOL_NAMES[desc]
        original = case.get("hOriginal", case.get("tTupleRes", case.get("lrsRes")))
        bits = case.get("hBitstring", case.get("binTTupleRes", case.get("binLrsRes")))
        if original is not None:
            values[(key, "original")] = original
        if bits is not None:
            values[(key, "bitstring")] = bits
    return values


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_every_estimator_matches_ea_non_iid(name: str, assessed) -> None:
    result = assessed(name)
    ref = _reference_values(name)
    assert result.bits == int(ref[("overall", "bits")])
    assert result.samples == 1_000_000
    for key in ESTIMATORS:
        est = result.estimators[key]
        for which, ours in (("original", est.h_original), ("bitstring", est.h_bitstring)):
            expected = ref.get((key, which))
            if expected is None:
                assert ours is None, f"{key} {which}: the reference tool ran no such estimate"
            else:
                assert ours is not None, f"{key} {which}: missing"
                assert abs(ours - expected) <= TOLERANCE, f"{key} {which}: {ours} vs {expected}"
    assert abs(result.h_original - ref[("overall", "original")]) <= TOLERANCE
    assert abs(result.h_assessed - ref[("overall", "assessed")]) <= TOLERANCE
    if ("overall", "bitstring") in ref:
        assert result.h_bitstring is not None
        assert abs(result.h_bitstring - ref[("overall", "bitstring")]) <= TOLERANCE
    else:
        assert result.h_bitstring is None


# Intermediate values from the verbose output: counts must be identical and
# probabilities agree to many digits, which pins down where a difference starts.
_FLOAT = r"([-+0-9.eE]+)"
_PATTERNS = {
    "mcv": re.compile(
        rf"(Bitstring|Literal) MCV Estimate: mode = (\d+), p-hat = {_FLOAT}, p_u = {_FLOAT}"
    ),
    "collision": re.compile(
        rf"(Bitstring|Literal) Collision Estimate: X-bar = {_FLOAT}, sigma-hat = {_FLOAT}, p = {_FLOAT}"
    ),
    "compression": re.compile(
        rf"(Bitstring|Literal) Compression Estimate: X-bar = {_FLOAT}, sigma-hat = {_FLOAT}, p = {_FLOAT}"
    ),
    "markov": re.compile(
        rf"(Bitstring|Literal) Markov Estimate: P_0 = {_FLOAT}, P_1 = {_FLOAT}, P_0,0 = {_FLOAT}, "
        rf"P_0,1 = {_FLOAT}, P_1,0 = {_FLOAT}, P_1,1 = {_FLOAT}, p_max = {_FLOAT}"
    ),
    "t_tuple": re.compile(
        rf"(Bitstring|Literal) t-Tuple Estimate: t = (\d+), p-hat_max = {_FLOAT}, p_u = {_FLOAT}"
    ),
    "lrs": re.compile(
        rf"(Bitstring|Literal) LRS Estimate: u = (\d+), v = (\d+), p-hat = {_FLOAT}, p_u = {_FLOAT}"
    ),
    "predictor": re.compile(
        rf"(Bitstring|Literal) (MultiMCW|Lag|MultiMMC|LZ78Y) Prediction Estimate: N = (\d+), "
        rf"Pglobal' = {_FLOAT} \(C = (\d+)\) (?:Plocal = {_FLOAT}|Plocal can't affect result) \(r = (\d+)\)"
    ),
}
_PREDICTOR_KEYS = {"MultiMCW": "multi_mcw", "Lag": "lag", "MultiMMC": "multi_mmc", "LZ78Y": "lz78y"}


def _close(ours: float, theirs: str, rel: float = 1e-9) -> bool:
    return math.isclose(ours, float(theirs), rel_tol=rel, abs_tol=1e-300)


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_intermediate_values_match_the_verbose_output(name: str, assessed) -> None:
    result = assessed(name)
    text = (VECTORS / f"{name}.reference.txt").read_text()
    checked = 0

    def details(key: str, label: str) -> dict:
        est = result.estimators[key]
        return est.details_bitstring if label == "Bitstring" else est.details_original

    for m in _PATTERNS["mcv"].finditer(text):
        d = details("mcv", m[1])
        assert d["mode"] == int(m[2]) and _close(d["p_hat"], m[3]) and _close(d["p_u"], m[4])
        checked += 1
    for key in ("collision", "compression"):
        for m in _PATTERNS[key].finditer(text):
            d = details(key, m[1])
            assert _close(d["x_bar"], m[2]) and _close(d["sigma"], m[3]), (key, d, m[0])
            # the tool's bisection stops within a few ulps of the root
            assert _close(d["p"], m[4], rel=1e-7), (key, d, m[0])
            checked += 1
    for m in _PATTERNS["markov"].finditer(text):
        d = details("markov", m[1])
        for field, group in (("p0", 2), ("p00", 4), ("p10", 6), ("p_max", 8)):
            assert _close(d[field], m[group]), (field, d, m[0])
        checked += 1
    for m in _PATTERNS["t_tuple"].finditer(text):
        d = details("t_tuple", m[1])
        assert (
            d["t"] == int(m[2])
            and _close(d["p_hat_max"], m[3], 1e-12)
            and _close(d["p_u"], m[4], 1e-12)
        )
        checked += 1
    for m in _PATTERNS["lrs"].finditer(text):
        d = details("lrs", m[1])
        assert (d["u"], d["v"]) == (int(m[2]), int(m[3]))
        assert _close(d["p_hat"], m[4], 1e-12) and _close(d["p_u"], m[5], 1e-12)
        checked += 1
    for m in _PATTERNS["predictor"].finditer(text):
        d = details(_PREDICTOR_KEYS[m[2]], m[1])
        assert (d["N"], d["C"], d["r"]) == (int(m[3]), int(m[5]), int(m[7])), (d, m[0])
        assert _close(d["p_global_prime"], m[4])
        if m[6] is None:
            assert d["p_local"] is None
        else:
            assert d["p_local"] is not None and _close(d["p_local"], m[6], 1e-8), (d, m[0])
        checked += 1
    binary = result.h_bitstring is None
    assert checked == (10 if binary else 17)


def test_json_shape(assessed) -> None:
    multi = assessed("markov4-4bit").to_json()
    assert list(multi) == [
        "file",
        "sha256",
        "bits",
        "samples",
        "h_original",
        "h_bitstring",
        "h_assessed",
        "estimators",
    ]
    assert list(multi["estimators"]) == list(ESTIMATORS)
    for key in ("collision", "markov", "compression"):
        assert set(multi["estimators"][key]) == {"h_bitstring"}
    for key in ("mcv", "t_tuple", "lrs", "multi_mcw", "lag", "multi_mmc", "lz78y"):
        assert set(multi["estimators"][key]) == {"h_original", "h_bitstring"}
    binary = assessed("biased1-1bit").to_json()
    assert binary["h_bitstring"] is None and binary["bits"] == 1
    assert all(set(v) == {"h_original"} for v in binary["estimators"].values())
    json.dumps(multi)  # plain JSON types only


# ---------------------------------------------------------------- by hand


def test_constant_samples_have_no_entropy() -> None:
    data = np.full(20_000, 5, dtype=np.uint8)
    result = assess_noniid(data, 3)
    assert result.h_assessed == 0.0 and result.h_original == 0.0
    assert result.h_bitstring is None  # one symbol: assessed as binary, like the tool
    for key in ESTIMATORS:
        assert result.estimators[key].h_original == pytest.approx(0.0, abs=1e-12), key


def test_mcv_by_hand() -> None:
    data = np.array([0] * 1000 + [1] * 3000 + [2] * 500, dtype=np.uint8)
    est = mcv_estimate(data, 3)
    p_hat = 3000 / 4500
    p_u = p_hat + 2.576 * math.sqrt(p_hat * (1 - p_hat) / 4499)
    assert est.details["mode"] == 3000
    assert est.h == pytest.approx(-math.log2(p_u), abs=1e-4)  # the standard rounds z to 2.576
    assert pytest.approx(2.576, abs=1e-3) == Z_ALPHA


def test_markov_alternating_bits() -> None:
    # 0101...: P_01 = P_10 = 1, so the likeliest 128-bit sequence has p = 1/2.
    bits = np.tile(np.array([0, 1], dtype=np.uint8), 5000)
    est = markov_estimate(bits)
    assert est.h == pytest.approx(1 / 128)


def test_collision_alternating_and_constant_bits() -> None:
    alternating = np.tile(np.array([0, 1], dtype=np.uint8), 5000)
    est = collision_estimate(alternating)
    assert est.details["x_bar"] == 3.0 and est.h == 1.0  # every collision takes 3 bits
    constant = np.zeros(10_000, dtype=np.uint8)
    est = collision_estimate(constant)
    assert est.details["x_bar"] == 2.0 and est.h == pytest.approx(0.0)


def test_collision_solves_the_binary_expectation() -> None:
    rng = np.random.default_rng(7)
    bits = (rng.random(200_000) < 0.7).astype(np.uint8)
    est = collision_estimate(bits)
    p = est.details["p"]
    assert 2 + 2 * p * (1 - p) == pytest.approx(est.details["x_bar_low"], rel=1e-12)
    assert 0.69 < p < 0.75


def test_compression_expectation_is_decreasing_and_solved() -> None:
    rng = np.random.default_rng(3)
    bits = (rng.random(60_000) < 0.8).astype(np.uint8)
    est = compression_estimate(bits)
    blocks = bits.size // 6
    assert lib.sp_compression_expectation(est.details["p"], blocks) == pytest.approx(
        est.details["x_bar_low"], rel=1e-9
    )
    values = [lib.sp_compression_expectation(p, blocks) for p in (1 / 64, 0.1, 0.3, 0.6, 0.9)]
    assert values == sorted(values, reverse=True)
    assert compression_estimate(bits[:6000]).h is None  # needs more than 1000 blocks


def test_tuple_counts_by_brute_force() -> None:
    rng = np.random.default_rng(11)
    for k in (2, 3, 5):
        data = rng.integers(0, k, 400).astype(np.uint8)
        q, pairs = suffix.tuple_counts(suffix.lcp_array(data, suffix.suffix_array(data)))
        text = bytes(data)
        for t in range(1, q.size):
            counts = Counter(text[i : i + t] for i in range(len(text) - t + 1))
            assert q[t] == max(counts.values())
            assert pairs[t] == sum(c * (c - 1) // 2 for c in counts.values())
        assert (
            max(Counter(text[i : i + q.size] for i in range(len(text) - q.size + 1)).values()) == 1
        )


def test_t_tuple_and_lrs_on_a_periodic_sequence() -> None:
    period = np.array([0, 1, 2, 3], dtype=np.uint8)
    data = np.tile(period, 250)  # 1000 samples, every t-tuple is one of 4
    t_tuple, lrs = tuple_estimates(data)
    n = data.size
    assert lrs.details["v"] == n - 4  # the longest repeat: all but one period
    # the commonest t-tuple occurs ceil((n - t + 1) / 4) times: >= 35 up to t = 864
    assert t_tuple.details["t"] == 864 and lrs.details["u"] == 865
    best = max(((n - t + 4) // 4 / (n - t + 1)) ** (1 / t) for t in range(1, 865))
    assert t_tuple.details["p_hat_max"] == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("k", [3, 200])
def test_tuple_counts_lists_match_the_array_route(k: int) -> None:
    rng = np.random.default_rng(k)
    data = rng.integers(0, k, 3000).astype(np.uint8)
    data[2000:2600] = data[100:700]  # one long repeat
    q, pairs = suffix.tuple_counts(suffix.lcp_array(data, suffix.suffix_array(data)))
    assert suffix.tuple_counts_lists(bytes(data)) == (q.tolist(), pairs.tolist())
    assert suffix.tuple_counts_lists(data) == (q.tolist(), pairs.tolist())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=300))
def test_suffix_array_sorts_suffixes(values: list[int]) -> None:
    data = np.array(values, dtype=np.uint8)
    sa = suffix.suffix_array(data)
    text = bytes(data)
    assert sa.tolist() == sorted(range(len(text)), key=lambda i: text[i:])
    lcp = suffix.lcp_array(data, sa)
    for i in range(1, len(sa)):
        a, b = text[sa[i - 1] :], text[sa[i] :]
        h = 0
        while h < min(len(a), len(b)) and a[h] == b[h]:
            h += 1
        assert lcp[i] == h


def test_tiny_inputs_never_claim_more_than_the_data_supports() -> None:
    rng = np.random.default_rng(0)
    for n in [*range(2, 40), 4095, 4096, 6005, 6006, 6011, 6012]:
        for k, bits in ((2, 1), (3, 2), (200, 8)):
            result = assess_noniid(rng.integers(0, k, n).astype(np.uint8), bits)
            assert 0.0 <= result.h_assessed <= bits
            assert result.estimators["mcv"].h_original is not None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=400), st.integers(1, 70))
def test_bit_lcp_matches_the_suffix_array_route(values: list[int], period: int) -> None:
    bits = np.array(values, dtype=np.uint8)
    periodic = np.tile(bits[:period], 1 + 400 // max(1, min(period, bits.size)))[:400]
    for seq in (bits, periodic):
        expected = suffix.lcp_array(seq, suffix.suffix_array(seq))
        assert suffix.bit_lcp_array(seq, budget_factor=1e9).tolist() == expected.tolist()
        tight = suffix.bit_lcp_array(seq, budget_factor=0.0)  # may give up, never be wrong
        assert tight is None or tight.tolist() == expected.tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=600), st.integers(1, 90))
def test_bit_tuple_counts_match_the_suffix_array_route(values: list[int], period: int) -> None:
    bits = np.array(values, dtype=np.uint8)
    periodic = np.tile(bits[:period], 1 + 600 // max(1, min(period, bits.size)))[:600]
    for seq in (bits, periodic):
        q, pairs = suffix.tuple_counts(suffix.lcp_array(seq, suffix.suffix_array(seq)))
        got = suffix.bit_tuple_counts(seq, budget_factor=1e9)
        assert got is not None
        assert got[0].tolist() == q.tolist() and got[1].tolist() == pairs.tolist()
        tight = suffix.bit_tuple_counts(seq, budget_factor=0.0)  # may give up, never be wrong
        assert tight is None or (tight[0].tolist() == q.tolist() and tight[1].tolist() == pairs.tolist())


@pytest.mark.parametrize("p_one", [0.5, 0.9])
def test_bit_tuple_counts_over_several_chunks(p_one: float) -> None:
    """Past 2^21 bits the positions are collected in several scans (chunks of buckets)."""
    rng = np.random.default_rng(3)
    bits = (rng.random(9_000_000) < p_one).astype(np.uint8)
    bits[4_000_000:4_000_300] = bits[100:400]  # one long repeat across a chunk boundary
    q, pairs = suffix.tuple_counts(suffix.lcp_array(bits, suffix.suffix_array(bits)))
    got = suffix.bit_tuple_counts(bits, budget_factor=1e9)  # biased: one bucket holds a third
    assert got is not None
    assert got[0].tolist() == q.tolist() and got[1].tolist() == pairs.tolist()


def test_bit_lcp_gives_up_on_long_repeats() -> None:
    zeros = np.zeros(200_000, dtype=np.uint8)
    assert suffix.bit_lcp_array(zeros) is None  # the caller falls back to SA-IS
    assert suffix.bit_tuple_counts(zeros) is None
    t_tuple, lrs = tuple_estimates(zeros)
    assert t_tuple.h == 0.0 and lrs.h == 0.0
    assert lrs.details["v"] == zeros.size - 1


def test_suffix_rejects_bad_arguments() -> None:
    with pytest.raises(UsageError):
        suffix.lcp_array(np.zeros(4, dtype=np.uint8), np.array([0, 1, 2], dtype=np.int32))
    with pytest.raises(UsageError):
        suffix.lcp_array(np.zeros(3, dtype=np.uint8), np.array([0, 1, 7], dtype=np.int32))
    with pytest.raises(UsageError):
        suffix.suffix_array(np.zeros((2, 2), dtype=np.uint8))


# Predictors: the C kernels against direct transcriptions of the standard's
# pseudocode (slow, small inputs).


def _kernel(name: str, data: np.ndarray, k: int) -> tuple[int, int, int]:
    out = ffi.new("sp_predictor_result *")
    assert getattr(lib, name)(ffi.from_buffer("uint8_t[]", data), data.size, k, out) == 0
    return out.predictions, out.correct, out.longest_run


def _tally(hits: list[bool]) -> tuple[int, int, int]:
    run = longest = 0
    for h in hits:
        run = run + 1 if h else 0
        longest = max(longest, run)
    return len(hits), sum(hits), longest


def _lag_reference(s: list[int]) -> tuple[int, int, int]:
    score = [0] * 128
    winner, hits = 0, []
    for i in range(1, len(s)):
        hits.append(s[i - winner - 1] == s[i])
        for d in range(min(i, 128)):
            if s[i - d - 1] == s[i]:
                score[d] += 1
                if score[d] >= score[winner]:
                    winner = d
    return _tally(hits)


def _mcw_reference(s: list[int]) -> tuple[int, int, int]:
    windows = (63, 255, 1023, 4095)
    score = [0] * 4
    winner, hits = 0, []
    for i in range(63, len(s)):
        freq = []
        for w in windows:
            if i < w:
                freq.append(None)
                continue
            window = s[i - w : i]
            counts = Counter(window)
            top = max(counts.values())
            # ties: the value seen most recently
            freq.append(next(v for v in reversed(window) if counts[v] == top))
        hits.append(freq[winner] == s[i])
        for j in range(4):
            if freq[j] is not None and freq[j] == s[i]:
                score[j] += 1
                if score[j] >= score[winner]:
                    winner = j
    return _tally(hits)


def _mmc_reference(s: list[int]) -> tuple[int, int, int]:
    models: list[dict[tuple, Counter]] = [{} for _ in range(16)]
    score = [0] * 16
    winner, correct, run, longest = 0, 0, 0, 0
    for i in range(1, len(s)):
        # predictions for s[i] (from i >= 2), then count (x, s[i]) for every order
        if i >= 2:
            current = winner
            for d in range(16):
                if d > i - 2:
                    break
                x = tuple(s[i - d - 1 : i])
                if x not in models[d]:
                    break  # longer contexts are unseen too
                counts = models[d][x]
                top = max(counts.values())
                pred = max(y for y, c in counts.items() if c == top)
                if pred == s[i]:
                    score[d] += 1
                    if score[d] >= score[winner]:
                        winner = d
                if d == current:
                    correct += pred == s[i]
                    run = run + 1 if pred == s[i] else 0
                    longest = max(longest, run)
        for d in range(min(16, i)):
            models[d].setdefault(tuple(s[i - d - 1 : i]), Counter())[s[i]] += 1
    return len(s) - 2, correct, longest


def _lz78y_reference(s: list[int]) -> tuple[int, int, int]:
    dictionary: dict[tuple, Counter] = {}
    for j in range(1, 17):
        dictionary.setdefault(tuple(s[16 - j : 16]), Counter())[s[16]] += 1
    hits = []
    for i in range(17, len(s)):
        best, pred = 0, None
        for j in range(16, 0, -1):
            x = tuple(s[i - j : i])
            if x in dictionary:
                counts = dictionary[x]
                top = max(counts.values())
                y = max(v for v, c in counts.items() if c == top)
                if top > best:
                    best, pred = top, y
                counts[s[i]] += 1
            elif len(dictionary) < 65536:
                dictionary[x] = Counter({s[i]: 1})
        hits.append(pred == s[i])
    return _tally(hits)


@pytest.mark.parametrize("k", [2, 3, 6, 40, 200])
def test_predictor_kernels_follow_the_pseudocode(k: int) -> None:
    rng = np.random.default_rng(k)
    # a mix of structure and noise so that every predictor wins somewhere
    base = rng.integers(0, k, 5000)
    base[2500:3500] = np.tile(rng.integers(0, k, 7), 200)[:1000]
    data = base.astype(np.uint8)
    seq = data.tolist()
    assert _kernel("sp_lag", data, k) == _lag_reference(seq)
    assert _kernel("sp_multi_mcw", data, k) == _mcw_reference(seq)
    assert _kernel("sp_multi_mmc", data[:2500], k) == _mmc_reference(seq[:2500])
    assert _kernel("sp_lz78y", data[:2500], k) == _lz78y_reference(seq[:2500])


def test_lz78y_after_its_dictionary_fills() -> None:
    """Once the 65,536 contexts are in, LZ78Y looks up only the orders that can be
    there; the context added last may lack its shorter suffix (here one of order
    10 is met again later), and must still be found."""
    rng = np.random.default_rng(47)
    base = rng.integers(0, 4, 12_000)
    base[6000:9000] = np.tile(rng.integers(0, 4, 7), 500)[:3000]
    data = np.minimum(base, rng.integers(0, 4, 12_000)).astype(np.uint8)
    assert _kernel("sp_lz78y", data, 4) == _lz78y_reference(data.tolist())


@pytest.mark.parametrize("name", ["sp_lag", "sp_multi_mcw", "sp_multi_mmc", "sp_lz78y"])
def test_predictor_kernels_reject_symbols_outside_the_alphabet(name: str) -> None:
    data = np.zeros(5000, dtype=np.uint8)
    data[-1] = 7
    out = ffi.new("sp_predictor_result *")
    rc = getattr(lib, name)(ffi.from_buffer("uint8_t[]", data), data.size, 7, out)
    assert rc == lib.SP_ERR_ARGS


def test_lag_on_a_periodic_sequence_by_hand() -> None:
    data = np.tile(np.arange(5, dtype=np.uint8), 400)
    # Steps 1..5 predict with lag 1 (wrong); lag 5 leads from then on.
    assert _kernel("sp_lag", data, 5) == (1999, 1994, 1994)


def test_prediction_bound_global_and_local() -> None:
    # No run beyond chance: the global bound decides.
    est = prediction_bound(400_000, 1_000_000, 10, 4)
    p = 0.4
    assert est.h == pytest.approx(-math.log2(p + Z_ALPHA * math.sqrt(p * (1 - p) / 999_999)))
    assert est.details["p_local"] is None
    # A run of 5,000 correct predictions in a sea of misses: the local bound decides.
    est = prediction_bound(6000, 1_000_000, 5000, 2)
    assert est.details["p_local"] is not None and est.details["p_local"] > 0.99
    assert est.h == pytest.approx(-math.log2(est.details["p_local"]))
    # Never correct: p_global' = 1 - 0.01^(1/N), but never below 1/k.
    assert prediction_bound(0, 1000, 0, 2).h == pytest.approx(1.0)


def test_bitstring_is_msb_first() -> None:
    assert bitstring(np.array([0b101, 0b011], dtype=np.uint8), 3).tolist() == [1, 0, 1, 0, 1, 1]
    assert bitstring(np.array([0x80], dtype=np.uint8), 8).tolist() == [1, 0, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("bits", range(1, 9))
def test_bitstring_matches_numpy(bits: int) -> None:
    data = np.arange(256, dtype=np.uint8) & ((1 << bits) - 1)
    expected = np.unpackbits(data[:, None], axis=1)[:, 8 - bits :].reshape(-1)
    assert bitstring(data, bits).tolist() == expected.tolist()
    assert bitstring(bytes(data), bits).tolist() == expected.tolist()
    assert bitstring(b"", bits).size == 0


def test_progress_is_reported_for_every_run() -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 16, 20_000).astype(np.uint8)
    calls: list[tuple[int, int, str]] = []
    result = assess_noniid(
        data, 4, progress=lambda done, total, what: calls.append((done, total, what))
    )
    assert [c[0] for c in calls] == list(range(1, len(calls) + 1))
    assert all(c[1] == len(calls) for c in calls) and len(calls) == 15
    assert 0 < result.h_assessed <= 4
    assert any(f"at least {MIN_SAMPLES:,}" in w for w in result.warnings)


def test_single_worker_gives_the_same_result() -> None:
    rng = np.random.default_rng(9)
    data = rng.integers(0, 8, 30_000).astype(np.uint8)
    assert (
        assess_noniid(data, 3, workers=1).to_json() == assess_noniid(data, 3, workers=2).to_json()
    )


# ---------------------------------------------------------------- bad input


def test_assess_rejects_bad_arguments() -> None:
    with pytest.raises(UsageError):
        assess_noniid(np.zeros(0, dtype=np.uint8), 1)
    with pytest.raises(UsageError, match="at least 2"):
        assess_noniid(np.zeros(1, dtype=np.uint8), 1)
    with pytest.raises(UsageError):
        assess_noniid(np.zeros(10, dtype=np.uint8), 9)
    with pytest.raises(UsageError):
        assess_noniid(np.zeros(10, dtype=np.uint8), 0)
    with pytest.raises(InputFileError, match="does not fit in 2 bits"):
        assess_noniid(np.array([0, 1, 4], dtype=np.uint8), 2)


def test_load_samples_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        load_samples(tmp_path / "missing.bin")
    with pytest.raises(InputFileError, match="directory"):
        load_samples(tmp_path)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        load_samples(empty)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match="not a regular file"):
        load_samples(fifo)  # must not block waiting for a writer
    wide = tmp_path / "wide.bin"
    wide.write_bytes(bytes([1, 2, 3, 9]))
    with pytest.raises(InputFileError, match="offset 3 does not fit in 3 bits"):
        load_samples(wide, bits=3)
    for bad in (0, 9, -1):
        with pytest.raises(UsageError, match="between 1 and 8"):
            load_samples(wide, bits=bad)


def test_load_samples_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.bin"
    path.write_bytes(b"\x01\x02")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(InputFileError, match="cannot read: Permission denied"):
        load_samples(path)


def test_load_samples_infers_width_and_warns_when_short(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    path.write_bytes(bytes([0, 5, 3, 2]))
    loaded = load_samples(path)
    assert loaded.bits == 3 and loaded.samples.tolist() == [0, 5, 3, 2]
    assert any("at least 1,000,000" in w for w in loaded.warnings)
    wider = load_samples(path, bits=8)
    assert any("only 3 of the 8 bits" in w for w in wider.warnings)
    assert infer_bits(np.zeros(5, dtype=np.uint8)) == 1
    assert infer_bits(np.array([255], dtype=np.uint8)) == 8


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 255), max_size=300))
def test_byte_counts_equal_bincount(values: list[int]) -> None:
    from chaosmagnet.assessment._kernel import byte_counts

    data = np.array(values, dtype=np.uint8)
    assert byte_counts(data) == np.bincount(data, minlength=256).tolist()
    assert byte_counts(bytes(data)) == byte_counts(data)  # bytes-like data: no numpy needed


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=2, max_size=300))
def test_markov_counts_the_transitions(values: list[int]) -> None:
    bits = np.array(values, dtype=np.uint8)
    counts = ffi.new("int64_t[4]")
    assert lib.sp_markov_counts(ffi.from_buffer("uint8_t[]", bits), bits.size, counts) == 0
    pairs = Counter(zip(values, values[1:]))
    assert list(counts) == [pairs[(0, 0)], pairs[(0, 1)], pairs[(1, 0)], pairs[(1, 1)]]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_jobs_report_each_result_once_and_raise_the_first_error(workers: int) -> None:
    import threading

    from chaosmagnet.assessment.noniid import _run_in_order

    seen: list[tuple[int, int]] = []
    callers = set()

    def done(index: int, value: int) -> None:
        callers.add(threading.get_ident())
        seen.append((index, value))

    _run_in_order([lambda i=i: i * i for i in range(7)], workers, done)
    assert sorted(seen) == [(i, i * i) for i in range(7)]
    assert callers == {threading.get_ident()}  # progress is reported from the calling thread

    def boom() -> int:
        raise MemoryError("estimator: out of memory")

    with pytest.raises(MemoryError, match="out of memory"):
        _run_in_order([lambda: 1, boom, lambda: 2, lambda: 3], workers, lambda i, v: None)


@pytest.mark.parametrize(("k", "bits"), [(2, 1), (2, 8), (5, 3), (256, 8)])
def test_bytes_and_arrays_give_the_same_assessment(k: int, bits: int) -> None:
    rng = np.random.default_rng(k)
    values = rng.integers(0, k, 20_000).astype(np.uint8)
    if k == 2 and bits == 8:
        values = np.where(values == 1, 200, 17).astype(np.uint8)  # two values, renumbered
    from_array = assess_noniid(values, bits)
    for data in (values.tobytes(), bytearray(values.tobytes()), memoryview(values.tobytes())):
        assert assess_noniid(data, bits).to_json() == from_array.to_json()


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_assessment_runs_without_numpy(tmp_path: Path, bits: int) -> None:
    """A file goes from disk to H_assessed without importing numpy (its import was
    most of a 1-bit run's start-up and memory, and a tenth of an 8-bit run's time)."""
    path = tmp_path / "samples.bin"
    path.write_bytes(bytes(np.random.default_rng(2).integers(0, 1 << bits, 50_000).astype(np.uint8)))
    code = (
        "import sys\n"
        "from chaosmagnet.assessment.noniid import assess_noniid\n"
        "from chaosmagnet.assessment.samples import load_samples\n"
        "loaded = load_samples(sys.argv[1])\n"
        "print(assess_noniid(loaded.data, loaded.bits).h_assessed)\n"
        "print('numpy' in sys.modules)\n"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    h, numpy_loaded = out.stdout.split()
    expected = assess_noniid(np.frombuffer(path.read_bytes(), dtype=np.uint8), bits).h_assessed
    assert float(h) == expected and numpy_loaded == "False"
