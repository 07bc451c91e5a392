"""The C and Python names generated code uses, and the checks that keep them apart.

Everything that a spec name ends up in is spelled here, once: the parser
checks identifiers against :data:`C_RESERVED`, :func:`check_service` checks
that no two generated names collide (within a service, with ics.h, and
across services given together), and the generators take the names from
these functions.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from typing import Literal

from genmod.ics.model import (
    ArrayType,
    BytesType,
    Field,
    Loc,
    Message,
    Op,
    PagesType,
    Service,
    SpecError,
)

Which = Literal["req", "rep"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


IDENT_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
"""Spec names: lower-case C identifiers starting with a letter."""

C_KEYWORDS = _words(
    """
    auto break case char const continue default do double else enum extern
    float for goto if inline int long register restrict return short signed
    sizeof static struct switch typedef union unsigned void volatile while
    alignas alignof bool constexpr false nullptr static_assert thread_local
    true typeof typeof_unqual asm
    """
)
"""C11/C23 keywords and GNU ``asm`` (the ``_X`` ones cannot be spec names)."""

KERNEL_RESERVED = _words(
    """
    u8 u16 u32 u64 s8 s16 s32 s64 size_t ssize_t uintptr_t
    current fallthrough noinline notrace noinstr asmlinkage
    """
)
"""Kernel type names and object-like lower-case kernel macros (``m->current``
would expand)."""

C_RESERVED = C_KEYWORDS | KERNEL_RESERVED

ICS_H_NAMES = _words(
    """
    ics_register_service ics_unregister_service ics_call ics_call_take ics_send
    ics_call_pages ics_put_pages ics_msg
    ics_set_peer ics_clear_peer ics_node_down ics_peer_connected
    ics_configured_nodes ics_peer_addr ics_hdr ics_op ics_service ics_chan ics_kind
    """
)
"""Identifiers ics.h declares (``ics_<svc>_<op>`` stubs must not hit them)."""

PY_RESERVED = frozenset({"pack", "unpack", "self", "cls", "int", "bytes", "str", "tuple"})
"""Field names the generated Python classes rename (besides keywords): their
methods and the names their class bodies use."""


# --- C -------------------------------------------------------------------


def svc_prefix(svc: Service) -> str:
    return svc.name.upper()


def header_guard(svc: Service) -> str:
    return f"_{svc_prefix(svc)}_ICS_H"


def service_macro(svc: Service) -> str:
    return f"{svc_prefix(svc)}_ICS_SERVICE"


def op_macro(svc: Service, op: Op) -> str:
    return f"{svc_prefix(svc)}_ICS_OP_{op.name.upper()}"


def op_version_macro(svc: Service, op: Op) -> str:
    return f"{op_macro(svc, op)}_VERSION"


def max_macro(svc: Service, op: Op, which: Which) -> str:
    return f"{svc_prefix(svc)}_{op.name.upper()}_{which.upper()}_MAX"


def struct_tag(svc: Service, op: Op, which: Which) -> str:
    return f"{svc.name}_{op.name}_{which}"


def pack_fn(svc: Service, op: Op, which: Which) -> str:
    return f"{struct_tag(svc, op, which)}_pack"


def unpack_fn(svc: Service, op: Op, which: Which) -> str:
    return f"{struct_tag(svc, op, which)}_unpack"


def stub_fn(svc: Service, op: Op) -> str:
    return f"ics_{svc.name}_{op.name}"


def handler_fn(svc: Service, op: Op) -> str:
    return f"{svc.name}_srv_{op.name}"


def dispatch_fn(svc: Service, op: Op) -> str:
    return f"{svc.name}_{op.name}_dispatch"


def ops_array(svc: Service) -> str:
    return f"{svc.name}_ics_ops"


def service_var(svc: Service) -> str:
    return f"{svc.name}_ics_service"


def len_member(f: Field) -> str | None:
    """The struct member holding a bytes length or an array count, if any."""
    if isinstance(f.type, BytesType):
        return f"{f.name}_len"
    if isinstance(f.type, ArrayType | PagesType):
        return f"{f.name}_count"
    return None


def c_members(f: Field) -> list[str]:
    lm = len_member(f)
    return [f.name] if lm is None else [lm, f.name]


def messages(op: Op) -> list[tuple[Which, Message]]:
    out: list[tuple[Which, Message]] = [("req", op.req)]
    if op.rep is not None:
        out.append(("rep", op.rep))
    return out


def c_globals(svc: Service) -> list[tuple[str, Loc]]:
    """Every file-scope C identifier and macro the generated files define."""
    out: list[tuple[str, Loc]] = [
        (header_guard(svc), svc.loc),
        (service_macro(svc), svc.loc),
        (ops_array(svc), svc.loc),
        (service_var(svc), svc.loc),
    ]
    for op in svc.ops:
        names = [op_macro(svc, op), op_version_macro(svc, op), stub_fn(svc, op),
                 handler_fn(svc, op), dispatch_fn(svc, op)]
        for which, _ in messages(op):
            names += [max_macro(svc, op, which), pack_fn(svc, op, which),
                      unpack_fn(svc, op, which), "struct " + struct_tag(svc, op, which)]
        out += [(n, op.loc) for n in names]
    return out


# --- Python ----------------------------------------------------------------


def py_class(op: Op, which: Which) -> str:
    camel = "".join(part.capitalize() for part in op.name.split("_"))
    return f"{camel}{which.capitalize()}"


def py_field(f: Field) -> str:
    if keyword.iskeyword(f.name) or keyword.issoftkeyword(f.name) or f.name in PY_RESERVED:
        return f.name + "_"
    return f.name


# --- checks ----------------------------------------------------------------


def _unique(items: Iterable[tuple[str, Loc]], what: str,
            taken: dict[str, Loc] | None = None) -> dict[str, Loc]:
    seen: dict[str, Loc] = {} if taken is None else taken
    for name, loc in items:
        if name in seen:
            raise SpecError(loc, f"{what} '{name}' collides with the one from {seen[name]}")
        seen[name] = loc
    return seen


def check_message(msg: Message) -> None:
    _unique(((m, f.loc) for f in msg.fields for m in c_members(f)), "C struct member")
    _unique(((py_field(f), f.loc) for f in msg.fields), "Python field name")


def check_service(svc: Service) -> None:
    """Raise :class:`SpecError` if generated names collide."""
    for op in svc.ops:
        for _, msg in messages(op):
            check_message(msg)
    builtin_loc = Loc("ics.h", 0, 0)
    taken = {n: builtin_loc for n in ICS_H_NAMES}
    _unique(c_globals(svc), "generated C name", taken)
    _unique(((py_class(op, w), op.loc) for op in svc.ops for w, _ in messages(op)),
            "generated Python class")


def check_services(services: Iterable[Service]) -> None:
    """Cross-service checks for specs built together: ids, names, C names."""
    ids: dict[int, Service] = {}
    taken: dict[str, Loc] = {}
    for svc in services:
        if svc.id in ids:
            raise SpecError(svc.loc, f"service id {svc.id} is also used by service "
                                     f"'{ids[svc.id].name}' ({ids[svc.id].loc})")
        ids[svc.id] = svc
        _unique(c_globals(svc), "generated C name", taken)
