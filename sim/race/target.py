"""What a hunt or a search looks for, and what makes two violations the same one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.engine.violations import Violation
from sim.kinds import KINDS
from sim.mm.checks.kasan import BUG_HARMS, HARMS
from sim.errors import InputError

DEFAULT_HARMS = BUG_HARMS


@dataclass(frozen=True)
class Target:
    """What counts as found: a violation of `kind`, or (no kind) an anon_vma access of one
    of `harms`."""

    kind: str | None = None
    harms: tuple[str, ...] = DEFAULT_HARMS
    via: str | None = None             # and, if given, at this kernel site (a signature's)

    def match(self, v: Violation) -> bool:
        if self.via is not None and site(v) != self.via:
            return False
        return v.kind == self.kind if self.kind else v.harm in self.harms

    @classmethod
    def named(cls, name: str | None) -> "Target":
        """`--kind`: a violation kind, or the harm of an anon_vma access (default: any
        harm that is a bug)."""
        if name is None:
            return cls()
        if name in KINDS:
            return cls(kind=name)
        if name in HARMS:
            return cls(harms=(name,))
        raise InputError(f"unknown violation kind or harm {name!r}; valid: "
                         + ", ".join([*KINDS, *HARMS]))

    @classmethod
    def of(cls, sig: dict[str, Any]) -> "Target":
        """The violation a signature describes: its kind, harm and site."""
        return cls(kind=None, harms=(sig["harm"],), via=sig["via"]) if sig.get("harm") \
            else cls(kind=sig["kind"], via=sig["via"])

    def describe(self) -> str:
        return self.kind or " or ".join(self.harms)


def site(v: Violation) -> str:
    """The kernel function where it happened."""
    return v.detail.get("via") or v.detail.get("source") or ""


def same_violation(v: Violation, sig: dict[str, Any]) -> bool:
    """Whether `v` is the violation a signature names: the same kind, harm and site."""
    return (v.kind, v.harm, site(v)) == (sig["kind"], sig.get("harm"), sig["via"])


def signature(v: Violation) -> dict[str, Any]:
    """What makes a violation the same one: kind, harm, and the kernel site."""
    return {"kind": v.kind, "harm": v.harm, "via": site(v), "time_us": round(v.time_us, 3)}
