"""The two account charts as inline SVG coordinates: the health trend and the value matrix."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT, PAD = 560, 200, 30
SIDE = 360  # the matrix is square


@dataclass(frozen=True)
class Trend:
    points: str  # the polyline's "x,y x,y ..."
    dots: list[dict[str, Any]]
    first: str
    last: str
    band_lines: list[dict[str, Any]]


def trend(history: Sequence[Any]) -> Trend | None:
    """The last days' scores (0-100) as a line; None without any score."""
    scored = [h for h in history if h.score is not None]
    if not scored:
        return None
    span = max(len(scored) - 1, 1)
    dots = []
    for i, row in enumerate(scored):
        x = PAD + (WIDTH - 2 * PAD) * (i / span if len(scored) > 1 else 0.5)
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * row.score / 100
        dots.append({"x": round(x, 1), "y": round(y, 1), "score": row.score, "day": row.day.isoformat()})
    lines = [{"y": round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / 100, 1), "value": v} for v in (40, 70)]
    return Trend(" ".join(f"{d['x']},{d['y']}" for d in dots), dots, dots[0]["day"], dots[-1]["day"], lines)


def scatter(placements: Sequence[Any], names: dict[str, str], cuts: dict[str, Any]) -> dict[str, Any]:
    """Each account as a dot: x = value today, y = potential, both 0-100, with the cut lines."""
    inner = SIDE - 2 * PAD

    def x(v: float) -> float:
        return round(PAD + inner * v / 100, 1)

    def y(v: float) -> float:
        return round(SIDE - PAD - inner * v / 100, 1)

    dots = [{"x": x(p.value_today), "y": y(p.potential), "id": p.account_id, "name": names.get(p.account_id, ""),
             "quadrant": p.quadrant, "value": p.value_today, "potential": p.potential} for p in placements]
    return {"dots": dots, "cut_x": x(cuts["value_cut"]), "cut_y": y(cuts["potential_cut"]), "side": SIDE,
            "pad": PAD, "far": SIDE - PAD}
