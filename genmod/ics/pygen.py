"""Python codec generation: ``<svc>_ics.py``.

The generated module needs only the standard library.  It has the service
and op constants, one dataclass per message (``<Op>Req``, ``<Op>Rep``) with
``pack()`` and ``unpack()``, and ``DECODERS`` mapping (service, op,
version, kind) to the class that decodes such a frame's body.  ``unpack``
raises ValueError exactly where the C unpack returns -EBADMSG.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from genmod.ics import cgen
from genmod.ics import names as N
from genmod.ics.model import (
    ArrayType,
    BytesType,
    Field,
    Kind,
    Message,
    Op,
    PagesType,
    ScalarType,
    Service,
    StringType,
)


@dataclass(frozen=True)
class PyField:
    name: str
    """The spec name (used in error messages)."""
    attr: str
    """The Python attribute (the spec name, ``_``-suffixed if it would clash)."""
    annotation: str
    default: str
    pack: str
    unpack: str


def py_field(f: Field) -> PyField:
    attr = N.py_field(f)
    t = f.type
    q = f'"{f.name}"'
    if isinstance(t, ScalarType):
        code = t.int_type.struct_code
        return PyField(f.name, attr, "int", "0", f'w.num({q}, "{code}", self.{attr})',
                       f'r.num({q}, "{code}")')
    if isinstance(t, BytesType):
        return PyField(f.name, attr, "bytes", 'b""', f"w.blob({q}, self.{attr}, {t.bound})",
                       f"r.blob({q}, {t.bound})")
    if isinstance(t, StringType):
        return PyField(f.name, attr, "str", '""', f"w.text({q}, self.{attr}, {t.bound})",
                       f"r.text({q}, {t.bound})")
    if isinstance(t, PagesType):
        # its count went first (pre_pack/pre_unpack); the pages come last
        return PyField(f.name, attr, "tuple[bytes, ...]", "()", f"w.pages({q}, self.{attr})",
                       f"r.pages({q}, n_pages)")
    assert isinstance(t, ArrayType)
    code = t.elem.struct_code
    return PyField(f.name, attr, "tuple[int, ...]", "()",
                   f'w.array({q}, "{code}", self.{attr}, {t.bound})',
                   f'r.array({q}, "{code}", {t.bound})')


@dataclass(frozen=True)
class PyMsg:
    cls: str
    doc: list[str]
    op_const: str
    version_const: str
    kind: str
    max_size: int
    fields: list[PyField]
    pre_pack: list[str]
    """Statements before the fields: the count of a pages<N> field."""
    pre_unpack: list[str]


def _msg(svc: Service, op: Op, which: N.Which, msg: Message, kind: Kind) -> PyMsg:
    what = {Kind.CALL: "request", Kind.REPLY: "reply", Kind.ONEWAY: "one-way message"}[kind]
    summary = ", ".join(f"{f.type.spec} {f.name}" for f in msg.fields) or "no fields"
    doc = textwrap.wrap(f"{svc.name}.{op.name} {what} (op {op.id} v{op.version}): {summary}.",
                        width=88)
    return PyMsg(
        cls=N.py_class(op, which),
        doc=doc,
        op_const=f"OP_{op.name.upper()}",
        version_const=f"OP_{op.name.upper()}_VERSION",
        kind=f"KIND_{kind.name}",
        max_size=msg.max_size,
        fields=[py_field(f) for f in msg.fields],
        pre_pack=_pages_count(msg, pack=True),
        pre_unpack=_pages_count(msg, pack=False),
    )


def _pages_count(msg: Message, pack: bool) -> list[str]:
    """The statement writing or reading the count of a pages<N> field, which
    comes first in the packed message; none without one."""
    f = msg.pages
    if f is None or not isinstance(f.type, PagesType):
        return []
    if pack:
        return [f'w.pages_count("{f.name}", self.{N.py_field(f)}, {f.type.bound})']
    return [f'n_pages = r.pages_count("{f.name}", {f.type.bound})']


def render(svc: Service) -> dict[str, str]:
    """File name -> content of the Python codec for ``svc``."""
    msgs: list[PyMsg] = []
    for op in svc.ops:
        msgs.append(_msg(svc, op, "req", op.req, op.req_kind))
        if op.rep is not None:
            msgs.append(_msg(svc, op, "rep", op.rep, Kind.REPLY))
    ctx = {"svc": svc, "msgs": msgs, "kinds": list(Kind)}
    text = cgen.env().get_template("ics.py.j2").render(ctx)
    return {f"{svc.name}_ics.py": text}
