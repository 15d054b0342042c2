"""Fixtures shared by the controller's tests: the tiny three-site fleet and its APN."""

from __future__ import annotations

import pytest

from wattbit.examples import tiny_fleet
from wattbit.network import build_apn


@pytest.fixture(scope="module")
def fleet():
    return tiny_fleet()


@pytest.fixture(scope="module")
def apn(fleet):
    return build_apn(fleet)
