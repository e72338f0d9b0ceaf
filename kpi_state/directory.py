"""Who belongs where: rep → team → region, and the scopes an attributed contribution counts in."""

from __future__ import annotations

from dataclasses import dataclass, field

UNASSIGNED = "unassigned"
GLOBAL = "global"


@dataclass(frozen=True)
class Placement:
    team_id: str = UNASSIGNED
    region_id: str = UNASSIGNED


@dataclass
class RepDirectory:
    """The rep mapping; a rep with no mapping counts under team and region `unassigned`."""

    placements: dict[str, Placement] = field(default_factory=dict)
    _scopes: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict, repr=False)

    def place(self, rep_id: str, team_id: str, region_id: str) -> bool:
        """Record a mapping; True when it changed anything (rollups must then be rebuilt)."""
        new = Placement(team_id, region_id)
        if self.placements.get(rep_id) == new:
            return False
        self.placements[rep_id] = new
        self._scopes.clear()
        return True

    def of(self, rep_id: str) -> Placement:
        return self.placements.get(rep_id, _DEFAULT)

    def region_of_team(self, team_id: str) -> str:
        """A team's region, as its reps are placed (`unassigned` when no rep says)."""
        for placement in self.placements.values():
            if placement.team_id == team_id:
                return placement.region_id
        return UNASSIGNED

    def scopes_of_rep(self, rep_id: str) -> tuple[str, ...]:
        """The four scopes a rep's event counts in, narrowest first."""
        return self.scopes(("rep", rep_id))

    def scopes(self, attribution: tuple[str, str]) -> tuple[str, ...]:
        """Scopes an attribution counts in: ("rep", id), ("team", id) or ("global", "")."""
        cached = self._scopes.get(attribution)
        if cached is not None:
            return cached
        kind, ident = attribution
        if kind == "rep":
            placement = self.of(ident)
            scopes: tuple[str, ...] = (
                f"rep:{ident}",
                f"team:{placement.team_id}",
                f"region:{placement.region_id}",
                GLOBAL,
            )
        elif kind == "team":
            scopes = (f"team:{ident}", f"region:{self.region_of_team(ident)}", GLOBAL)
        else:
            scopes = (GLOBAL,)
        self._scopes[attribution] = scopes
        return scopes


_DEFAULT = Placement()
