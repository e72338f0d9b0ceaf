"""Seeded, pure generator of realistic CRM and billing traffic as contract envelopes."""

from streams.simulator.bad import BAD_KINDS
from streams.simulator.common import DEFAULT_CURRENCIES, SCENARIOS, SimRecord
from streams.simulator.org import Organisation, Region, Rep, Team
from streams.simulator.traffic import Simulator

__all__ = [
    "BAD_KINDS",
    "DEFAULT_CURRENCIES",
    "SCENARIOS",
    "Organisation",
    "Region",
    "Rep",
    "SimRecord",
    "Simulator",
    "Team",
]
