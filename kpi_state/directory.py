"""Who belongs where: rep → team → region, and the scopes an attributed event counts in."""

from __future__ import annotations

from dataclasses import dataclass, field

UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class Placement:
    team_id: str = UNASSIGNED
    region_id: str = UNASSIGNED


@dataclass
class RepDirectory:
    """The rep mapping; a rep with no mapping counts under team and region `unassigned`."""

    placements: dict[str, Placement] = field(default_factory=dict)

    def place(self, rep_id: str, team_id: str, region_id: str) -> bool:
        """Record a mapping; True when it changed anything (rollups must then be rebuilt)."""
        new = Placement(team_id, region_id)
        if self.placements.get(rep_id) == new:
            return False
        self.placements[rep_id] = new
        return True

    def of(self, rep_id: str) -> Placement:
        return self.placements.get(rep_id, _DEFAULT)

    def scopes_of_rep(self, rep_id: str) -> tuple[str, str, str, str]:
        """The four scopes a rep's event counts in, narrowest first."""
        placement = self.of(rep_id)
        return (
            f"rep:{rep_id}",
            f"team:{placement.team_id}",
            f"region:{placement.region_id}",
            "global",
        )


_DEFAULT = Placement()
