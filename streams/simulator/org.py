"""The simulated organisation: regions, teams, reps and their names."""

from __future__ import annotations

import random
from dataclasses import dataclass


# ----------------------------------------------------------------------------------
# The organisation
# ----------------------------------------------------------------------------------

_REGION_NAMES = ("emea", "amer", "apac", "latam", "mea", "anz", "nordics", "dach")
_REGION_UTC_OFFSET_H = {
    "emea": 1, "amer": -5, "apac": 8, "latam": -3, "mea": 3, "anz": 10, "nordics": 1, "dach": 1,
}  # fmt: skip
_REGION_CURRENCIES = {"emea": ("EUR", "GBP"), "amer": ("USD",), "apac": ("USD",)}
_FIRST_NAMES = (
    "Ada", "Bram", "Chloé", "Dev", "Elif", "Farid", "Greta", "Hiro", "Inès", "Jonas",
    "Kemi", "Lars", "Mei", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
    "Uma", "Victor", "Wen", "Yusuf", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Achebe", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Haddad",
    "Ivanova", "Jansen", "Kowalski", "Laurent", "Moreau", "Nakamura", "Okafor", "Patel",
    "Rossi", "Schmidt", "Tanaka", "Varga", "Weber", "Yilmaz", "Zhang",
)  # fmt: skip


@dataclass(frozen=True)
class Rep:
    """One sales rep and where it sits in the organisation."""

    rep_id: str
    name: str
    team_id: str
    region_id: str
    manager: str


@dataclass(frozen=True)
class Team:
    """A team of reps under one manager, billing in one home currency."""

    team_id: str
    region_id: str
    manager: str
    reps: tuple[Rep, ...]


@dataclass(frozen=True)
class Region:
    """A sales region; its UTC offset places the working day of its reps."""

    region_id: str
    utc_offset_h: int
    teams: tuple[Team, ...]


@dataclass(frozen=True)
class Organisation:
    """Regions → teams → reps, with ids like `emea`, `t-emea-1`, `r-01`."""

    regions: tuple[Region, ...]

    @classmethod
    def generate(
        cls,
        seed: int = 0,
        *,
        regions: int = 3,
        teams_per_region: int = 2,
        reps_per_team: int = 4,
    ) -> Organisation:
        """A deterministic organisation of the given sizes; the seed picks the names."""
        if min(regions, teams_per_region, reps_per_team) < 1:
            raise ValueError("an organisation needs at least one region, team and rep")
        rng = random.Random(f"org:{seed}")
        n_reps = regions * teams_per_region * reps_per_team
        names = iter(_people(rng, n_reps + regions * teams_per_region))
        width = max(2, len(str(n_reps)))
        rep_no = 0
        built: list[Region] = []
        for r in range(regions):
            region_id = _REGION_NAMES[r] if r < len(_REGION_NAMES) else f"region-{r + 1}"
            teams: list[Team] = []
            for t in range(teams_per_region):
                team_id = f"t-{region_id}-{t + 1}"
                manager = next(names)
                reps = []
                for _ in range(reps_per_team):
                    rep_no += 1
                    rep_id = f"r-{rep_no:0{width}d}"
                    reps.append(Rep(rep_id, next(names), team_id, region_id, manager))
                teams.append(Team(team_id, region_id, manager, tuple(reps)))
            offset = _REGION_UTC_OFFSET_H.get(region_id, (r * 7) % 24 - 11)
            built.append(Region(region_id, offset, tuple(teams)))
        return cls(tuple(built))

    @property
    def teams(self) -> tuple[Team, ...]:
        """Every team, region by region."""
        return tuple(team for region in self.regions for team in region.teams)

    @property
    def reps(self) -> tuple[Rep, ...]:
        """Every rep, team by team."""
        return tuple(rep for team in self.teams for rep in team.reps)


def _people(rng: random.Random, count: int) -> list[str]:
    """Distinct person names while the name lists last, numbered beyond that."""
    pairs = [(f, last) for f in _FIRST_NAMES for last in _LAST_NAMES]
    if count <= len(pairs):
        return [f"{f} {last}" for f, last in rng.sample(pairs, count)]
    return [f"{f} {last} {i}" for i, (f, last) in enumerate(rng.choices(pairs, k=count))]



def _home_currencies(region_id: str, index: int, currencies: tuple[str, ...]) -> tuple[str, ...]:
    """The currencies a region's teams bill in, limited to the configured ones."""
    preferred = tuple(c for c in _REGION_CURRENCIES.get(region_id, ()) if c in currencies)
    return preferred or (currencies[index % len(currencies)],)
