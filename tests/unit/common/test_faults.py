"""Fault points: armed only by name, for everything or for one subject."""

from __future__ import annotations

import pytest

from steno.common.faults import GATEWAY_BEFORE_PUBLISH, TRANSCRIBER_BEFORE_ENGINE, Faults


def test_nothing_is_armed_by_default() -> None:
    faults = Faults("")
    faults.hit(GATEWAY_BEFORE_PUBLISH)  # returns: the process lives on
    faults.hit(TRANSCRIBER_BEFORE_ENGINE, "poison.ogg")


def test_a_point_armed_for_one_subject_spares_the_others() -> None:
    Faults(f"{TRANSCRIBER_BEFORE_ENGINE}=poison.ogg").hit(TRANSCRIBER_BEFORE_ENGINE, "fine.ogg")


def test_an_unknown_point_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown fault point 'gateway-on-fire'"):
        Faults("gateway-on-fire")
