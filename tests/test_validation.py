"""The scalar checks every subpackage uses: ranges, bools, numpy scalars, NaN and infinity, text."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from semkit.validation import check_confidence, check_count, check_probability, check_scalar


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1), np.uint8(200), 10**12])
def test_counts_accept_ints_and_numpy_integers_as_plain_ints(value):
    out = check_count(value, "n_samples")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value, error, fragment", [
    (0, ValueError, "n_samples must be a whole number of at least 1, got 0"),
    (-5, ValueError, "got -5"),
    (2.5, ValueError, "got 2.5: it is not a whole number"),
    (3.0, ValueError, "got 3.0: pass the whole number 3"),
    (np.float64(4.0), ValueError, "pass the whole number 4"),
    (float("nan"), ValueError, "got nan"),
    (float("inf"), ValueError, "got inf"),
    (True, TypeError, "got True: pass a number, not a bool"),
    (np.True_, TypeError, "not a bool"),
    ("10", TypeError, "got '10': pass the number 10, not the text '10'"),
    ("ten", TypeError, "pass a number, not text"),
    (None, TypeError, "got None: pass a number"),
    ([3], TypeError, "got [3] (a list): pass one number"),
])
def test_counts_refuse_what_is_no_whole_number_in_range(value, error, fragment):
    with pytest.raises(error) as info:
        check_count(value, "n_samples")
    assert fragment in str(info.value)


def test_a_count_says_what_it_counts_and_its_least_value():
    assert check_count(0, "random_state", minimum=0) == 0
    with pytest.raises(ValueError, match=r"n_samples must be a whole number of at least 2 \(Sobol samples\), got 1"):
        check_count(1, "n_samples", minimum=2, what="Sobol samples")


@pytest.mark.parametrize("value", [0.5, 1e-9, 1 - 1e-9, np.float32(0.25), np.float64(0.999), Fraction(1, 3)])
def test_confidences_are_floats_strictly_between_0_and_1(value):
    out = check_confidence(value)
    assert out == pytest.approx(float(value)) and type(out) is float


@pytest.mark.parametrize("value, error, fragment", [
    (0, ValueError, "confidence must be a number in (0, 1), got 0"),
    (1.0, ValueError, "got 1.0"),
    (95, ValueError, "got 95"),
    (-0.1, ValueError, "got -0.1"),
    (float("nan"), ValueError, "got nan: pass a finite number"),
    (float("-inf"), ValueError, "got -inf"),
    (True, TypeError, "not a bool"),
    ("0.95", TypeError, "pass the number 0.95, not the text '0.95'"),
    (None, TypeError, "got None"),
])
def test_confidences_refuse_the_ends_and_what_is_no_number(value, error, fragment):
    with pytest.raises(error) as info:
        check_confidence(value)
    assert fragment in str(info.value)


def test_probabilities_include_their_ends_unless_told_otherwise():
    assert check_probability(0, "p") == 0.0 and check_probability(1, "p") == 1.0
    with pytest.raises(ValueError, match=r"max_failure must be a number in \(0, 1\), got 0"):
        check_probability(0, "max_failure", closed="neither")
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\], got 1.5"):
        check_probability(1.5, "p")
    with pytest.raises(ValueError, match=r"in \(0, 1\], got 0"):
        check_scalar(0, "share", float, low=0, high=1, closed="right")
    assert check_scalar(1, "share", float, low=0, high=1, closed="right") == 1.0


@pytest.mark.parametrize("kwargs, value, fragment", [
    ({"low": 0, "closed": "neither"}, 0, "x must be a positive number, got 0"),
    ({"low": 0}, -1, "x must be a non-negative number, got -1"),
    ({"low": 2, "closed": "neither"}, 2, "x must be a number above 2, got 2"),
    ({"high": 10}, 11, "x must be a number of at most 10, got 11"),
    ({"high": 10, "closed": "neither"}, 10, "x must be a number below 10, got 10"),
    ({}, float("inf"), "x must be a finite number, got inf"),
    ({"low": 0, "high": 180, "closed": "neither", "what": "degrees"}, 180,
     "x must be a number in (0, 180) (degrees), got 180"),
])
def test_ranges_are_said_in_words(kwargs, value, fragment):
    with pytest.raises(ValueError) as info:
        check_scalar(value, "x", float, **kwargs)
    assert fragment in str(info.value)


def test_bools_never_pass_and_kinds_are_checked():
    for flag in (True, np.bool_(False)):
        with pytest.raises(TypeError, match="not a bool"):
            check_scalar(flag, "flag", int)
    assert type(check_scalar(np.int16(3), "x", float)) is float
    with pytest.raises(ValueError, match="kind must be int or float"):
        check_scalar(1, "x", complex)
    with pytest.raises(ValueError, match="closed must be one of"):
        check_scalar(1, "x", int, low=0, closed="open")
