"""The SP 800-90B IID track (chaosmagnet.assessment.iid).

Checked three ways: against NIST's ea_iid results for the reference files in
tests/data/sp800-90b (verdicts, chi-square statistics, the unshuffled
permutation statistics, the MCV estimates); the C statistics and shuffles
against plain numpy written from the standard's text; and the early-stopping
rules on data built to pass or fail particular tests.
"""

from __future__ import annotations

import bz2
import ctypes
import ctypes.util
import json
import math
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chaosmagnet._sp80090b_iid import ffi, lib
from chaosmagnet.assessment import iid
from chaosmagnet.errors import ChaosError, InputFileError, UsageError
from hypothesis import given, settings
from hypothesis import strategies as st

VECTORS = Path(__file__).resolve().parent / "data" / "sp800-90b"  # NIST ea_non_iid / ea_iid 1.1.7 outputs
IID_FILES = ["uniform8-8bit", "gauss8-8bit", "biased1-1bit"]
CHI_SQUARE_FAILS = ["drift8-8bit", "jitter8-8bit", "markov4-4bit"]
SEED = 20240601



# --------------------------------------------------------------------------
# Reference files
# --------------------------------------------------------------------------


def bits_of(name: str) -> int:
    return int(re.search(r"-(\d)bit$", name).group(1))


def load(name: str) -> np.ndarray:
    return np.fromfile(VECTORS / f"{name}.bin", dtype=np.uint8)


def parse_reference_text(name: str) -> dict[str, Any]:
    """The values ea_iid prints in its verbose output."""
    text = (VECTORS / f"{name}.iid-reference.txt").read_text()
    ref: dict[str, Any] = {}
    chi = re.findall(
        r"Chi square (independence|goodness of fit)\n\s*score = ([\d.]+)\n"
        r"\s*degrees of freedom = (\d+)\n\s*p-value = ([\d.]+)",
        text,
    )
    ref["chi"] = {kind: (float(s), int(df), float(p)) for kind, s, df, p in chi}
    ref["p_col"] = float(re.search(r"P_col: ([\d.]+)", text).group(1))
    ref["lrs_length"] = int(re.search(r"Length of LRS: (\d+)", text).group(1))
    ref["lrs_probability"] = float(re.search(r"Pr\(X >= 1\): ([\d.]+)", text).group(1))
    for label in ("Literal", "Bitstring"):
        m = re.search(
            rf"{label} MCV Estimate: mode = (\d+), p-hat = ([\d.e-]+), p_u = ([\d.e-]+)", text
        )
        ref[label] = None if m is None else (int(m.group(1)), float(m.group(2)), float(m.group(3)))
    m = re.search(r"min\(H_original, \d X H_bitstring\): ([\d.]+)", text)
    ref["h_assessed"] = None if m is None else float(m.group(1))
    initial = text.split("Initial test results")[1].split("Beginning permutation")[0]
    ref["initial"] = {
        name: float(value) for name, value in re.findall(r"^\s*(\S+): (\S+)$", initial, re.M)
    }
    table = text.split("C[i][2]")[1]
    ref["counts"] = {
        name: (int(a), int(b), int(c))
        for name, a, b, c in re.findall(r"^\s*(\S+?)\*?\s+(\d+)\s+(\d+)\s+(\d+)$", table, re.M)
    }
    return ref


@pytest.fixture(scope="module")
def reference_runs() -> dict[str, tuple[iid.IidResult, dict[str, Any], dict[str, Any]]]:
    """One full IID assessment per reference file, shared by the tests below."""
    runs = {}
    for name in IID_FILES:
        result = iid.assess_iid(load(name), bits_of(name), rng_seed=SEED)
        reference_json = json.loads((VECTORS / f"{name}.iid-reference.json").read_text())
        runs[name] = (result, reference_json, parse_reference_text(name))
    return runs


@pytest.mark.parametrize("name", IID_FILES)
def test_verdicts_match_ea_iid(reference_runs: dict, name: str) -> None:
    result, ref, _ = reference_runs[name]
    case = ref["testCases"][0]
    assert result.iid is ref["IID"] is True
    assert result.chi_square_passed is case["passedChiSquareTests"]
    assert result.lrs.passed is case["passedLongestRepeatedSubstringTest"]
    assert result.permutation_passed is case["passedIidPermutationTests"]
    assert result.binary is case.get("binary", False)
    assert result.mean == pytest.approx(case["mean"], abs=1e-9)
    assert result.median == case["median"]


@pytest.mark.parametrize("name", IID_FILES)
def test_chi_square_statistics_match_ea_iid(reference_runs: dict, name: str) -> None:
    result, _, text = reference_runs[name]
    tests = (("independence", result.independence), ("goodness of fit", result.goodness_of_fit))
    for kind, test in tests:
        score, df, p_value = text["chi"][kind]
        # ea_iid prints six decimals: 1e-6 is the printed precision.
        assert test.statistic == pytest.approx(score, abs=1e-6), kind
        assert test.df == df, kind
        assert test.p_value == pytest.approx(p_value, abs=1e-6), kind


@pytest.mark.parametrize("name", IID_FILES)
def test_lrs_matches_ea_iid(reference_runs: dict, name: str) -> None:
    result, _, text = reference_runs[name]
    assert result.lrs.length == text["lrs_length"]
    assert result.lrs.p_col == pytest.approx(text["p_col"], abs=1e-6)
    assert result.lrs.probability == pytest.approx(text["lrs_probability"], abs=1e-6)


@pytest.mark.parametrize("name", IID_FILES)
def test_entropy_estimates_match_ea_iid(reference_runs: dict, name: str) -> None:
    result, ref, text = reference_runs[name]
    case = ref["testCases"][0]
    mode, p_hat, p_u = text["Literal"]
    assert (result.mcv.mode, result.mcv.p_hat) == (mode, pytest.approx(p_hat, abs=1e-15))
    assert result.mcv.p_u == pytest.approx(p_u, abs=1e-15)
    assert result.h_original == pytest.approx(case["hOriginal"], abs=1e-6)
    if text["Bitstring"] is None:
        # Binary data: ea_iid makes no bitstring pass (its JSON keeps the placeholder 1.0).
        assert result.h_bitstring is None
        assert result.h_assessed == result.h_original
    else:
        mode, p_hat, p_u = text["Bitstring"]
        assert result.mcv_bitstring.mode == mode
        assert result.mcv_bitstring.p_u == pytest.approx(p_u, abs=1e-15)
        assert result.h_bitstring == pytest.approx(case["hBitstring"], abs=1e-6)
        # ea_iid -q leaves hAssessed at its placeholder (the bit width) in the JSON;
        # its verbose output prints the real min(H_original, B x H_bitstring).
        assert result.h_assessed == pytest.approx(text["h_assessed"], abs=1e-6)
    assert result.h_iid == result.h_assessed


@pytest.mark.parametrize("name", IID_FILES)
def test_unshuffled_statistics_match_ea_iid(reference_runs: dict, name: str) -> None:
    result, _, text = reference_runs[name]
    assert len(text["initial"]) == len(iid.TEST_NAMES)
    for test in result.permutation_tests:
        printed = text["initial"][iid.NIST_TEST_NAMES[test.name]]
        # Printed with six significant digits.
        assert test.statistic == pytest.approx(printed, rel=5e-6), test.name


@pytest.mark.parametrize("name", IID_FILES)
def test_permutation_counts_are_plausible(reference_runs: dict, name: str) -> None:
    result, ref, text = reference_runs[name]
    json_counts = {row["iteration"]: row for row in ref["testCases"][0]["permutationTestResults"]}
    for test in result.permutation_tests:
        nist = iid.NIST_TEST_NAMES[test.name]
        json_key = nist.replace("(", "").replace(")", "")
        # The .txt and .json files come from two ea_iid runs (different shuffles).
        for c0, c1, c2 in (
            text["counts"][nist],
            tuple(int(json_counts[i][json_key]) for i in range(3)),
        ):
            assert min(c0 + c1, c1 + c2) >= 6
        # Both tools stop a statistic when both sides of its rank hold more than five
        # shuffles; with results counted in order that happens at exactly six.
        assert test.passed is True
        assert min(test.c0 + test.c1, test.c1 + test.c2) == 6, test.name
        assert test.shuffles <= result.shuffles <= iid.PERMUTATIONS
    assert result.shuffles == max(t.shuffles for t in result.permutation_tests)


@pytest.mark.parametrize("name", CHI_SQUARE_FAILS)
def test_dependent_files_are_rejected_without_shuffling(name: str) -> None:
    result = iid.assess_iid(load(name), bits_of(name), rng_seed=SEED)
    assert result.iid is False
    assert result.h_iid is None
    assert not result.chi_square_passed
    assert result.shuffles == 0
    assert all(t.passed is None and t.shuffles == 0 for t in result.permutation_tests)
    assert result.permutation_passed is None
    assert result.verdict == "not_iid"
    assert result.notes
    # Each undecided statistic says why: the failed test named, no shuffles made.
    failed = [
        label
        for label, test in (
            ("chi-square independence", result.independence),
            ("chi-square goodness-of-fit", result.goodness_of_fit),
            ("longest-repeated-substring", result.lrs),
        )
        if test.passed is False
    ]
    for test in result.permutation_tests:
        assert test.status == "undecided"
        assert test.note.startswith("not run: the ") and test.note.endswith("so no shuffles were made")
        assert all(label in test.note for label in failed)


def test_rare_symbol_file_passes_the_deterministic_tests() -> None:
    """rare3 (91% zeros, seven rare symbols) shows no dependence the chi-square
    and LRS tests can see; only the shuffles could still reject it."""
    x = load("rare3-3bit")
    data_symbols = x  # its eight symbols are 0..7 already
    independence = iid.chi_square_independence(data_symbols, 8)
    goodness = iid.chi_square_goodness_of_fit(data_symbols, 8)
    lrs = iid.lrs_test(data_symbols, 8)
    assert (independence.df, goodness.df) == (56, 63)
    assert independence.passed and goodness.passed and lrs.passed
    assert lrs.length == 128


def test_json_object(reference_runs: dict) -> None:
    result, _, _ = reference_runs["gauss8-8bit"]
    obj = json.loads(json.dumps(result.to_json()))
    assert obj["iid"] is True
    assert obj["h_iid"] == pytest.approx(3.900731, abs=1e-6)
    assert set(obj["permutation"]["tests"]) == set(iid.TEST_NAMES)
    assert obj["chi_square"]["independence"]["df"] == 1503
    assert obj["lrs"]["passed"] is True
    assert obj["permutation"]["passed"] is True
    for row in obj["permutation"]["tests"].values():
        assert set(row) == {"statistic", "c0", "c1", "c2", "passed", "status", "note"}
        assert row["status"] == "passed" and row["note"] is None
    assert obj["verdict"] == "iid"
    assert obj["chi_square"]["independence"]["status"] == "passed"


# --------------------------------------------------------------------------
# The C statistics against numpy, from the standard's text
# --------------------------------------------------------------------------


def longest_run(flags: np.ndarray) -> int:
    best = run = 0
    previous = None
    for flag in flags.tolist():
        run = run + 1 if flag == previous else 1
        previous = flag
        best = max(best, run)
    return best


def collision_lengths(seq: np.ndarray) -> list[int]:
    lengths, seen, start = [], set(), 0
    for i, value in enumerate(seq.tolist()):
        if value in seen:
            lengths.append(i - start + 1)
            seen, start = set(), i + 1
        else:
            seen.add(value)
    return lengths


def conversion_one(bits01: np.ndarray) -> np.ndarray:
    padded = np.concatenate([bits01, np.zeros(-len(bits01) % 8, dtype=bits01.dtype)])
    return padded.reshape(-1, 8).sum(axis=1)


def conversion_two(bits01: np.ndarray) -> np.ndarray:
    return np.packbits(bits01.astype(np.uint8))  # big-endian, zero padded


def test_conversions_reference_example() -> None:
    # The worked example of SP 800-90B §5.1.
    bits = np.array([1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1])
    assert conversion_one(bits).tolist() == [4, 6, 2]
    assert conversion_two(bits).tolist() == [142, 219, 48]


def reference_statistics(raw: np.ndarray) -> list[float]:
    """The eighteen cheap statistics of §5.1.1-§5.1.10, straight from the text."""
    present = np.unique(raw)
    rank = {int(v): i for i, v in enumerate(present)}
    symbols = np.array([rank[int(v)] for v in raw])
    binary = len(present) == 2
    n = len(raw)
    mean = raw.sum() / n
    excursion = float(np.max(np.abs(np.cumsum(raw.astype(np.int64)) - np.arange(1, n + 1) * mean)))
    if binary:
        seq = conversion_one(symbols)
        coll = conversion_two(symbols)
        above = symbols >= 0.5
    else:
        seq, coll = raw.astype(np.int64), raw
        above = symbols >= np.median(symbols)
    up = seq[:-1] <= seq[1:]
    stats = [
        excursion,
        1 + int(np.count_nonzero(up[1:] != up[:-1])) if len(up) else 0,
        longest_run(up),
        max(int(up.sum()), int((~up).sum())),
        1 + int(np.count_nonzero(above[1:] != above[:-1])),
        longest_run(above),
    ]
    lengths = collision_lengths(coll)
    stats += [sum(lengths) / len(lengths) if lengths else 0.0, max(lengths, default=0)]
    seq = seq.astype(np.int64)
    lags = (1, 2, 8, 16, 32)
    stats += [int(np.count_nonzero(seq[:-p] == seq[p:])) if len(seq) > p else 0 for p in lags]
    stats += [int(np.dot(seq[:-p], seq[p:])) if len(seq) > p else 0 for p in lags]
    return [float(s) for s in stats]


@st.composite
def sample_arrays(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    bits = draw(st.integers(1, 8))
    n = draw(st.integers(iid.MIN_SAMPLES, 400))
    alphabet = draw(st.sampled_from(sorted({2, 3, 5, 1 << bits} & set(range(2, (1 << bits) + 1)))))
    values = draw(
        st.lists(st.integers(0, (1 << bits) - 1), min_size=alphabet, max_size=alphabet, unique=True)
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    raw = np.array(values, dtype=np.uint8)[rng.integers(0, len(values), n)]
    raw[:2] = values[:2]  # at least two distinct values
    return raw, bits


@settings(max_examples=150, deadline=None)
@given(sample_arrays())
def test_statistics_match_numpy_reference(case: tuple[np.ndarray, int]) -> None:
    raw, bits = case
    got = iid.permutation_statistics(raw, bits)
    expected = reference_statistics(raw)
    for name, g, e in zip(iid.TEST_NAMES, got, expected, strict=False):
        assert g == pytest.approx(e, rel=1e-12, abs=1e-9), name
    assert got[-1] == len(bz2.compress(decimal_text(raw), 5))


def _libbz2() -> Any:
    """libbz2 itself (the library NIST's ea_iid links), through ctypes."""
    name = ctypes.util.find_library("bz2") or "libbz2.so.1.0"
    library = ctypes.CDLL(name)
    library.BZ2_bzBuffToBuffCompress.argtypes = [
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_uint),
        ctypes.c_char_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
    ]
    return library


LIBBZ2 = _libbz2()


def bzip2_length(text: bytes, level: int) -> int:
    """len(BZ2_bzBuffToBuffCompress(text, level)): ea_iid's call, byte for byte."""
    capacity = ctypes.c_uint(len(text) + len(text) // 100 + 600)
    out = ctypes.create_string_buffer(capacity.value)
    assert LIBBZ2.BZ2_bzBuffToBuffCompress(out, ctypes.byref(capacity), text, len(text), level, 0, 30) == 0
    return capacity.value


def decimal_text(raw: np.ndarray) -> bytes:
    return " ".join(str(v) for v in raw.tolist()).encode()


def modelled_length(raw: np.ndarray, level: int) -> int:
    array = np.ascontiguousarray(raw, dtype=np.uint8)
    return int(lib.iid_compressed_length(ffi.from_buffer("uint8_t[]", array), len(array), level))


def test_compression_statistic_is_bzip2_of_decimal_text() -> None:
    rng = np.random.default_rng(5)
    uniform = rng.integers(0, 256, 5000).astype(np.uint8)
    uniform[:4] = [0, 9, 10, 255]
    repetitive = (rng.random(200000) < 0.02).astype(np.uint8)  # bzip2's fallback sort's case
    long_uniform = rng.integers(0, 256, 400_000).astype(np.uint8)  # three 500 kB blocks
    for raw in (uniform, repetitive, long_uniform, np.array([7, 200], dtype=np.uint8)):
        text = decimal_text(raw)
        assert iid.compression_statistic(raw) == bzip2_length(text, 5) == len(bz2.compress(text, 5))


def _kinds(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Data whose decimal text stresses the model: every word length, long
    repeats (rotations that tie for many words), periodic and constant text."""
    return {
        "uniform": rng.integers(0, 256, n).astype(np.uint8),
        "binary": rng.integers(0, 2, n).astype(np.uint8),
        "rare": np.where(rng.random(n) < 0.01, 7, 0).astype(np.uint8),
        "rare-pair": np.where(rng.random(n) < 0.001, 111, 11).astype(np.uint8),
        "nibbles": rng.integers(0, 16, n).astype(np.uint8),
        "repeated-digits": rng.choice(np.array([1, 11, 111, 2, 22, 222, 100, 200], dtype=np.uint8), n),
        "periodic": np.resize(np.arange(256, dtype=np.uint8), n),
        "period-3": np.resize(np.array([5, 55, 155], dtype=np.uint8), n),
        "constant": np.full(n, 111, dtype=np.uint8),
        "skewed": np.minimum(rng.geometric(0.3, n), 255).astype(np.uint8),
    }


@pytest.mark.parametrize("run", [1, 63, 64, 65, 127, 128, 129, 300])
@pytest.mark.parametrize("offset", [0, 1, 37, 63])
def test_longest_runs_across_word_boundaries(run: int, offset: int) -> None:
    """The longest runs are found 64 flags at a time: runs that start, end or
    span whole words at every offset, ending the data or not."""
    rng = np.random.default_rng(run * 100 + offset)
    head = rng.integers(0, 256, offset + 20).astype(np.uint8)
    for middle in (np.full(run, 200, dtype=np.uint8), np.arange(run, dtype=np.uint64).astype(np.uint8) % 251):
        for tail_length in (0, 1, 50):
            raw = np.concatenate([head, middle, rng.integers(0, 256, tail_length).astype(np.uint8)])
            got = iid.permutation_statistics(raw, 8)
            expected = reference_statistics(raw)
            for name, g, e in zip(iid.TEST_NAMES, got, expected, strict=False):
                assert g == pytest.approx(e, rel=1e-12, abs=1e-9), (name, run, offset, tail_length)


@pytest.mark.parametrize("level", [1, 5, 9])
def test_modelled_length_equals_libbz2_on_many_kinds_of_data(level: int) -> None:
    rng = np.random.default_rng(level)
    n = {1: 60_000, 5: 150_000, 9: 270_000}[level]  # two or three blocks each
    for name, raw in _kinds(rng, n).items():
        assert modelled_length(raw, level) == bzip2_length(decimal_text(raw), level), (name, level)


def _text_of_length(prefix: np.ndarray, length: int, last: list[int]) -> np.ndarray:
    """Samples whose decimal text is `length` bytes: words of `prefix`, then
    one-digit 8s up to the final words `last`."""
    words = [len(str(v)) + 1 for v in prefix.tolist()]
    room = length + 1 - sum(len(str(v)) + 1 for v in last)
    kept = int(np.searchsorted(np.cumsum(words), room - 40))
    body = prefix[:kept].tolist()
    used = sum(words[:kept])
    fill = room - used
    assert fill >= 0 and fill % 2 == 0 or fill >= 3
    if fill % 2:
        body.append(10)  # one 2-digit word (3 bytes with its space)
        fill -= 3
    body += [8] * (fill // 2)
    raw = np.array(body + last, dtype=np.uint8)
    assert len(decimal_text(raw)) == length
    return raw


def test_modelled_length_equals_libbz2_around_block_boundaries() -> None:
    """A block ends at the first run start at or past 100000 L - 19 bytes, except
    at the text's very last byte: texts ending on every side of that point, with
    a last byte that starts a run or does not."""
    limit = 100_000 - 19
    prefix = np.random.default_rng(11).integers(0, 256, 40_000).astype(np.uint8)
    for length in range(limit - 3, limit + 7):
        for last in ([5], [55], [56], [111], [112], [5, 55], [100, 7]):
            raw = _text_of_length(prefix, length, last)
            assert modelled_length(raw, 1) == bzip2_length(decimal_text(raw), 1), (length, last)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 3000),
    st.sampled_from(["uniform", "binary", "rare", "rare-pair", "nibbles", "repeated-digits", "period-3", "skewed"]),
    st.integers(1, 9),
)
def test_modelled_length_equals_libbz2_on_small_inputs(seed: int, n: int, kind: str, level: int) -> None:
    raw = _kinds(np.random.default_rng(seed), n)[kind]
    assert modelled_length(raw, level) == bzip2_length(decimal_text(raw), level)


def test_modelled_length_refuses_a_level_outside_bzip2s() -> None:
    raw = np.arange(100, dtype=np.uint8)
    assert modelled_length(raw, 0) == -3
    assert modelled_length(raw, 10) == -3


# --------------------------------------------------------------------------
# Shuffles
# --------------------------------------------------------------------------


def xoshiro256starstar(state: list[int]) -> int:
    mask = 2**64 - 1

    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & mask

    s0, s1, s2, s3 = state
    result = (rotl((s1 * 5) & mask, 7) * 9) & mask
    t = (s1 << 17) & mask
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = rotl(s3, 45)
    state[:] = [s0, s1, s2, s3]
    return result


def test_generator_is_xoshiro256starstar() -> None:
    rng = ffi.new("iid_rng *")
    state = [0x0123456789ABCDEF, 0xFEDCBA9876543210, 1, 2**63 + 5]
    for i, word in enumerate(state):
        rng.s[i] = word
    expected = list(state)
    for _ in range(100):
        assert lib.iid_rng_next(rng) == xoshiro256starstar(expected)


def test_bounded_draws_are_uniform() -> None:
    rng = ffi.new("iid_rng *")
    lib.iid_rng_seed(rng, 7, 0)
    draws = np.array([lib.iid_rng_below(rng, 3) for _ in range(30000)])
    counts = np.bincount(draws, minlength=3)
    assert draws.max() == 2
    chi2 = float(((counts - 10000) ** 2 / 10000).sum())
    assert chi2 < 13.8  # 99.9% point of chi-square with 2 degrees of freedom


def test_shuffles_are_reproducible_permutations() -> None:
    raw = np.arange(1000, dtype=np.int64).astype(np.uint8)
    a = iid.shuffled_copy(raw, seed=5, stream=3)
    assert np.array_equal(np.sort(a), np.sort(raw))
    assert np.array_equal(a, iid.shuffled_copy(raw, seed=5, stream=3))
    assert not np.array_equal(a, iid.shuffled_copy(raw, seed=5, stream=4))
    assert not np.array_equal(a, iid.shuffled_copy(raw, seed=6, stream=3))
    assert not np.array_equal(a, raw)


def test_shuffle_orders_are_uniform() -> None:
    raw = np.array([0, 1, 2, 3], dtype=np.uint8)
    seen: dict[bytes, int] = {}
    for stream in range(24 * 500):
        key = iid.shuffled_copy(raw, seed=11, stream=stream).tobytes()
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 24
    counts = np.array(list(seen.values()))
    chi2 = float(((counts - 500) ** 2 / 500).sum())
    assert chi2 < 49.7  # 99.9% point of chi-square with 23 degrees of freedom


# --------------------------------------------------------------------------
# Chi-square p-values
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statistic", "df"),
    [
        (0.5, 1),
        (3.0, 2),
        (8.397074, 9),
        (257.688926, 254),
        (1516.127849, 1503),
        (64685.80759, 65280),
        (80000.0, 65280),
        (2.0, 60),
        (500.0, 10),
        (1e-3, 4),
    ],
)
def test_p_value_matches_scipy(statistic: float, df: int) -> None:
    special = pytest.importorskip("scipy.special")
    expected = float(special.chdtrc(df, statistic))
    assert iid.chi_square_p_value(statistic, df) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_p_value_edge_cases() -> None:
    assert iid.chi_square_p_value(5.0, 0) == 1.0
    assert iid.chi_square_p_value(0.0, 7) == 1.0


# --------------------------------------------------------------------------
# Early stopping and verdicts on synthetic data
# --------------------------------------------------------------------------


def sorted_pair_chunks(seed: int) -> np.ndarray:
    """Uniform 4-bit samples whose pairs (s[2j], s[2j+1]) are reordered, 64
    pairs at a time, so that the first elements ascend.

    The multiset of pairs the chi-square independence test counts and the
    symbol counts of each tenth the goodness-of-fit test compares are exactly
    those of IID data, but neighbours two apart are now close: the
    permutation tests (covariance and periodicity at lag 2) must reject it.
    """
    pairs = np.random.default_rng(seed).integers(0, 16, (10240, 2)).astype(np.uint8)
    chunks = pairs.reshape(-1, 64, 2)
    order = np.argsort(chunks[:, :, 0], axis=1, kind="stable")
    return np.take_along_axis(chunks, order[:, :, None], axis=1).reshape(-1)


def test_permutation_failure_stops_the_run() -> None:
    x = sorted_pair_chunks(3)
    result = iid.assess_iid(x, 4, rng_seed=1, permutations=200)
    assert result.chi_square_passed and result.lrs.passed
    by_name = {t.name: t for t in result.permutation_tests}
    for name in ("periodicity_2", "covariance_2"):
        assert by_name[name].passed is False
        assert by_name[name].c0 + by_name[name].c1 <= iid.RANK_LIMIT
    # A statistic fails for certain only once too few shuffles remain to rescue it.
    assert result.shuffles >= 200 - iid.RANK_LIMIT
    assert result.iid is False and result.permutation_passed is False and result.h_iid is None


def test_skipping_needs_stop_early() -> None:
    ramp = (np.arange(3000) % 256).astype(np.uint8)
    quick = iid.assess_iid(ramp, 8, rng_seed=2, permutations=50)
    assert quick.shuffles == 0 and not quick.chi_square_passed
    full = iid.assess_iid(ramp, 8, rng_seed=2, permutations=50, stop_early=False)
    # Every statistic runs to its own verdict; a failure is certain 5 shuffles early.
    assert 50 - iid.RANK_LIMIT <= full.shuffles <= 50
    assert all(t.passed is not None for t in full.permutation_tests)
    assert full.permutation_passed is False
    assert full.iid is False


def test_counts_depend_only_on_the_seed() -> None:
    x = np.random.default_rng(9).integers(0, 16, 5000).astype(np.uint8)
    one = iid.assess_iid(x, 4, rng_seed=77, workers=1)
    two = iid.assess_iid(x, 4, rng_seed=77, workers=2)

    def counts(result: iid.IidResult) -> list[dict[str, Any]]:
        return [t.to_json() for t in result.permutation_tests]

    assert counts(one) == counts(two)
    assert one.shuffles == two.shuffles
    assert counts(iid.assess_iid(x, 4, rng_seed=78, workers=2)) != counts(one)


def test_iid_bits_pass_and_report_mcv() -> None:
    x = (np.random.default_rng(4).random(20000) < 0.7).astype(np.uint8)
    progress: list[tuple[int, int, str]] = []
    result = iid.assess_iid(x, 1, rng_seed=3, progress=lambda *a: progress.append(a))
    assert result.binary and result.median == 0.5
    assert result.iid is True
    ones = int(x.sum())
    expected = iid.most_common_value(max(ones, len(x) - ones), len(x))
    assert result.h_iid == expected.h == result.h_original
    assert result.h_bitstring is None
    assert progress[-1] == (iid.PERMUTATIONS, iid.PERMUTATIONS, "permutation tests")
    done = [p[0] for p in progress]
    assert done == sorted(done)


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "bits", "error"),
    [
        (np.zeros(100, dtype=np.uint8), 8, UsageError),  # one symbol: nothing to assess
        (np.arange(5, dtype=np.uint8), 8, UsageError),  # too few samples
        (np.arange(100, dtype=np.uint8), 0, UsageError),
        (np.arange(100, dtype=np.uint8), 9, UsageError),
        (np.arange(100, dtype=np.uint8), 4, InputFileError),  # values wider than 4 bits
        (np.zeros((10, 10), dtype=np.uint8), 8, UsageError),
        (np.full(100, 300), 8, UsageError),
    ],
)
def test_bad_input_raises_one_clear_error(samples: np.ndarray, bits: int, error: type) -> None:
    with pytest.raises(error) as info:
        iid.assess_iid(samples, bits, rng_seed=1)
    assert isinstance(info.value, ChaosError)
    assert "\n" not in str(info.value)


def test_bad_permutation_count() -> None:
    with pytest.raises(UsageError):
        iid.assess_iid(np.arange(100, dtype=np.uint8), 8, permutations=5)


def test_result_has_no_nan() -> None:
    x = np.random.default_rng(5).integers(0, 4, 3000).astype(np.uint8)
    obj = iid.assess_iid(x, 2, rng_seed=1).to_json()

    def walk(value: Any) -> None:
        if isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(obj)


# --------------------------------------------------------------------------
# The permutation run in C against the Python driver it replaced
# --------------------------------------------------------------------------


def python_permutation_run(
    samples: np.ndarray, bits: int, seed: int, permutations: int, stop_on_failure: bool
) -> tuple[list[list[int]], list[bool | None], int]:
    """The permutation run as the Python driver did it before iid_run_* (one thread, in order).

    Shuffle j from lib.iid_shuffle_copy(seed, j), statistics 0..17 from
    lib.iid_statistics, compression from Python's bz2 module, NIST's stopping rules.
    """
    data = iid._prepare(samples, bits)
    n = data.n
    params = iid._params(data, iid._median(data))
    original = iid.permutation_statistics(samples, bits)
    counts = [[0, 0, 0] for _ in range(iid._N)]
    decided: list[bool | None] = [None] * iid._N
    source = ffi.from_buffer("uint8_t[]", data.raw)
    shuffled = ffi.new("uint8_t[]", n)
    text = ffi.new("char[]", 4 * n)
    active = ffi.new("uint8_t[]", iid._N)
    out = ffi.new("double[]", iid._N)
    committed = 0
    for index in range(permutations):
        wanted = [d is None for d in decided]
        for i, flag in enumerate(wanted):
            active[i] = 1 if flag else 0
        lib.iid_shuffle_copy(source, shuffled, n, seed, index)
        assert lib.iid_statistics(shuffled, n, params, active, out) == 0
        if wanted[iid._COMPRESSION]:
            length = lib.iid_decimal_text(shuffled, n, text)
            out[iid._COMPRESSION] = len(bz2.compress(ffi.buffer(text, length), iid.BZIP2_LEVEL))
        committed += 1
        remaining = permutations - committed
        for i in range(iid._N):
            if decided[i] is not None:
                continue
            column = 0 if out[i] > original[i] else 1 if out[i] == original[i] else 2
            counts[i][column] += 1
            c0, c1, c2 = counts[i]
            if c0 + c1 > iid.RANK_LIMIT and c1 + c2 > iid.RANK_LIMIT:
                decided[i] = True
            elif c0 + c1 + remaining <= iid.RANK_LIMIT or c1 + c2 + remaining <= iid.RANK_LIMIT:
                decided[i] = False
        if all(d is not None for d in decided) or (stop_on_failure and False in decided):
            break
    return counts, decided, committed


ALL_VECTOR_FILES = sorted(p.stem for p in VECTORS.glob("*.bin"))
#: (file, samples used, permutations): the first 100,000 samples of every file; the
#: dependent ones with few permutations, because there the Python driver shuffles to the end.
C_RUN_CASES = [
    (name, 100_000, iid.PERMUTATIONS) if name in IID_FILES else (name, 50_000, 40) for name in ALL_VECTOR_FILES
]


@pytest.mark.parametrize(("name", "limit", "permutations"), C_RUN_CASES)
@pytest.mark.parametrize("stop_on_failure", [True, False])
def test_c_permutation_run_equals_python_driver(name: str, limit: int | None, permutations: int, stop_on_failure: bool) -> None:
    samples = load(name)[:limit]
    bits = bits_of(name)
    expected_counts, expected_decided, expected_shuffles = python_permutation_run(
        samples, bits, SEED, permutations, stop_on_failure
    )
    expected_original = iid.permutation_statistics(samples, bits)
    # The run either gets the original's compression statistic or makes it itself
    # (NaN) beside the first shuffles; compressions that can no longer count are
    # abandoned midway.
    for workers, made_by_run in ((1, False), (2, False), (1, True), (2, True)):
        data = iid._prepare(samples, bits)
        params = iid._params(data, iid._median(data))
        original = expected_original.copy()
        if made_by_run:
            original[iid._COMPRESSION] = np.nan
        counts, decided, shuffles = iid._permutation_run(
            data, params, original, permutations, SEED, workers, stop_on_failure, None
        )
        assert counts.tolist() == expected_counts, (name, workers, made_by_run)
        assert decided == expected_decided
        assert shuffles == expected_shuffles
        assert original.tolist() == expected_original.tolist()


def test_undecided_after_a_permutation_failure_names_the_failed_statistic() -> None:
    x = sorted_pair_chunks(3)
    result = iid.assess_iid(x, 4, rng_seed=1, permutations=60)
    assert result.permutation_passed is False
    failed = [t.name for t in result.permutation_tests if t.status == "failed"]
    undecided = [t for t in result.permutation_tests if t.status == "undecided"]
    assert undecided, "the data should leave some statistic undecided at the stop"
    for test in undecided:
        assert test.note.startswith(f"undecided: shuffling stopped after {result.shuffles:,} shuffles")
        named = failed if len(failed) <= 2 else [*failed[:2], f"and {len(failed) - 2} more had failed"]
        assert all(name in test.note for name in named), test.note
    full = iid.assess_iid(x, 4, rng_seed=1, permutations=60, stop_early=False)
    assert all(t.status in ("passed", "failed") and t.note is None for t in full.permutation_tests)
    # Same shuffles, same counts: the statistics both runs decided agree.
    for quick_test, full_test in zip(result.permutation_tests, full.permutation_tests, strict=True):
        if quick_test.passed is not None:
            assert quick_test.passed == full_test.passed


# --------------------------------------------------------------------------
# Degenerate inputs: not applicable, never passed, never a traceback
# --------------------------------------------------------------------------


def strict_json(obj: Any) -> Any:
    """The object through JSON with NaN and infinities refused."""
    return json.loads(json.dumps(obj, allow_nan=False))


def test_ten_two_bit_samples_are_not_iid_proven() -> None:
    x = np.array([0, 1, 2, 3, 0, 1, 2, 3, 1, 2], dtype=np.uint8)
    result = iid.assess_iid(x, 2, rng_seed=1)
    assert result.independence.df == -3
    assert result.independence.status == "not_applicable" and result.independence.passed is None
    assert "df = -3" in result.independence.note
    assert result.goodness_of_fit.status == "not_applicable"
    assert result.chi_square_passed is None
    assert result.verdict == "not_proven" and result.iid is False and result.h_iid is None
    by_name = {t.name: t for t in result.permutation_tests}
    for lag in (16, 32):
        for kind in ("periodicity", "covariance"):
            test = by_name[f"{kind}_{lag}"]
            assert test.status == "not_applicable" and test.passed is None
            assert f"lag {lag} needs more than {lag} samples, there are 10" in test.note
    assert by_name["periodicity_8"].applicable
    assert any(note.startswith("IID not proven: 6 tests") for note in result.notes)
    obj = strict_json(result.to_json())
    assert obj["iid"] is False and obj["verdict"] == "not_proven"
    assert obj["chi_square"]["independence"]["p_value"] is None
    assert obj["chi_square"]["independence"]["status"] == "not_applicable"


def test_ten_distinct_eight_bit_samples_have_no_lrs_test() -> None:
    x = np.array([10, 200, 33, 47, 95, 128, 255, 3, 77, 160], dtype=np.uint8)
    result = iid.assess_iid(x, 8, rng_seed=1)  # used to raise ValueError: math domain error
    assert result.lrs.status == "not_applicable" and result.lrs.passed is None
    assert "no value repeats" in result.lrs.note
    assert result.verdict == "not_proven" and result.iid is False
    assert strict_json(result.to_json())["lrs"]["probability"] is None


def test_short_binary_data_has_no_chi_square_tests() -> None:
    x = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0] * 2, dtype=np.uint8)
    result = iid.assess_iid(x, 1, rng_seed=1)
    assert result.binary
    assert result.independence.status == "not_applicable" and result.independence.df == 0
    assert result.goodness_of_fit.status == "not_applicable"
    assert "fewer than the 5 a chi-square cell needs" in result.goodness_of_fit.note
    # Conversion I leaves three blocks of 8 bits: lags 1 and 2 have pairs, 8 and up none.
    by_name = {t.name: t for t in result.permutation_tests}
    assert by_name["periodicity_2"].applicable and by_name["covariance_1"].applicable
    assert "lag 8 needs more than 8 blocks of 8 bits, there are 3" in by_name["periodicity_8"].note
    assert result.verdict == "not_proven"
    strict_json(result.to_json())


def test_too_few_orderings_make_every_permutation_test_not_applicable() -> None:
    x = np.array([0] * 11 + [1, 2], dtype=np.uint8)  # 13 * 12 = 156 distinct orderings
    result = iid.assess_iid(x, 2, rng_seed=1)
    assert result.shuffles == 0
    for test in result.permutation_tests:
        assert test.status == "not_applicable"
        assert "only 156 distinct orderings, fewer than the 10,000 shuffles" in test.note
    assert result.permutation_passed is None and result.verdict == "not_proven"


def test_a_failure_outweighs_not_applicable_tests() -> None:
    x = np.arange(0, 240, 8, dtype=np.uint8)  # 30 distinct values in increasing order
    result = iid.assess_iid(x, 8, rng_seed=1, permutations=100)
    assert "lrs" in result.not_applicable and "periodicity_32" in result.not_applicable
    assert {t.name: t.status for t in result.permutation_tests}["num_directional_runs"] == "failed"
    assert result.verdict == "not_iid" and result.iid is False


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=10, max_size=40))
def test_small_inputs_never_pass_a_test_that_could_not_run(values: list[int]) -> None:
    x = np.array(values, dtype=np.uint8)
    if len(set(values)) < 2:
        return
    result = iid.assess_iid(x, 8, rng_seed=1, permutations=100)
    strict_json(result.to_json())
    for test in (result.independence, result.goodness_of_fit):
        if test.df < 1:
            assert test.status == "not_applicable" and test.passed is None
    if result.verdict == "iid":
        assert not result.not_applicable


# --------------------------------------------------------------------------
# Both tracks at once (chaos-host assess --iid)
# --------------------------------------------------------------------------


def _without_seconds(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key != "seconds"}


@pytest.mark.parametrize("name", ["uniform8-8bit", "biased1-1bit"])
def test_both_tracks_at_once_equal_one_after_the_other(name: str) -> None:
    from chaosmagnet.assessment.noniid import assess_noniid
    from chaosmagnet.assessment.tracks import assess_both

    samples = load(name)[:60_000]
    bits = bits_of(name)
    seen: dict[str, list[int]] = {"noniid": [], "iid": []}
    noniid, iid_result = assess_both(
        samples,
        bits,
        rng_seed=SEED,
        noniid_progress=lambda done, total, _: seen["noniid"].append(done),
        iid_progress=lambda done, total, _: seen["iid"].append(done),
    )
    alone = iid.assess_iid(samples, bits, rng_seed=SEED)
    assert _without_seconds(iid_result.to_json()) == _without_seconds(alone.to_json())
    assert noniid.to_json() == assess_noniid(samples, bits).to_json()
    assert seen["noniid"] and seen["iid"]


def test_both_tracks_refuse_bad_input_before_starting() -> None:
    from chaosmagnet.assessment.tracks import assess_both

    with pytest.raises(InputFileError):
        assess_both(np.array([0, 1, 2, 44, 9], dtype=np.uint8), 2)
    with pytest.raises(UsageError):
        assess_both(np.array([0, 1, 2, 3], dtype=np.uint8), 9)
    assert not [t for t in threading.enumerate() if t.name == "iid-track"]
