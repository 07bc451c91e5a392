"""C generation: ``<svc>_ics.h``, ``<svc>_ics_wire.c`` and ``<svc>_ics.c``.

The templates under ``templates/`` lay the files out; the statement-level
code (pack/unpack bodies, wrapped declarators) is built here, so that the
templates stay readable and every line fits Linux coding style.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import cache

import jinja2

from genmod.ics import cwrap
from genmod.ics import names as N
from genmod.ics.model import (
    LEN_SIZE,
    ArrayType,
    BytesType,
    Field,
    IntType,
    Message,
    Op,
    PagesType,
    ScalarType,
    Service,
    StringType,
)

UNUSED = " __always_unused"


def _call(head: str, args: list[str], tail: str = "") -> str:
    return "\n".join(cwrap.call(head, args, tail))


@cache
def env() -> jinja2.Environment:
    """The template environment (shared with pygen)."""
    e = jinja2.Environment(
        loader=jinja2.PackageLoader("genmod.ics", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    e.globals["call"] = _call
    return e


# --- statements --------------------------------------------------------------


def _stmt(indent: int, text: str) -> list[str]:
    """One statement; an over-long assignment breaks after ``=``."""
    line = "\t" * indent + text
    if cwrap.width(line) <= cwrap.WIDTH or " = " not in text:
        return [line]
    lhs, rhs = text.split(" = ", 1)
    return ["\t" * indent + lhs + " =", "\t" * (indent + 1) + rhs]


def _at(base: str, off: int) -> str:
    return base if off == 0 else f"{base} + {off}"


def _get(t: IntType, base: str, off: int) -> str:
    e = f"{base}[{off}]" if t.size == 1 else f"get_unaligned_le{t.bits}({_at(base, off)})"
    return f"({t.name}){e}" if t.signed else e


def _put(t: IntType, value: str, base: str, off: int) -> str:
    if t.size == 1:
        return f"{base}[{off}] = {value};"
    return f"put_unaligned_le{t.bits}({value}, {_at(base, off)});"


def _has_string(msg: Message) -> bool:
    return any(isinstance(f.type, StringType) for f in msg.fields)


def _has_wide_array(msg: Message) -> bool:
    return any(isinstance(f.type, ArrayType) and f.type.elem.size > 1 for f in msg.fields)


def _data_size(f: Field, count: str) -> str:
    """C expression: bytes of variable data, given its length/count expression."""
    if isinstance(f.type, ArrayType) and f.type.elem.size > 1:
        return f"(size_t){count} * {f.type.elem.size}"
    return count


def unpack_body(msg: Message) -> list[str]:
    """Statements of ``<tag>_unpack(m, buf, len)`` for a message with fields."""
    if not any(f.is_var for f in msg.fields):
        out = [f"\tif (len != {msg.min_size})", "\t\treturn -EBADMSG;"]
        off = 0
        for f in msg.fields:
            assert isinstance(f.type, ScalarType)
            out += _stmt(1, f"m->{f.name} = {_get(f.type.int_type, 'buf', off)};")
            off += f.type.int_type.size
        return [*out, "\treturn 0;"]

    out = ["\tconst u8 *p = buf;", "\tsize_t left = len;"]
    if _has_string(msg):
        out.append("\tu32 n;")
    if _has_wide_array(msg):
        out.append("\tu32 i;")
    out.append("")
    run: list[str] = []
    off = 0
    for idx, f in enumerate(msg.fields):
        last = idx == len(msg.fields) - 1
        if isinstance(f.type, ScalarType):
            run += _stmt(1, f"m->{f.name} = {_get(f.type.int_type, 'p', off)};")
            off += f.type.int_type.size
            continue
        lm = N.len_member(f)
        count = "n" if lm is None else f"m->{lm}"
        run += _stmt(1, f"{count} = get_unaligned_le32({_at('p', off)});")
        off += LEN_SIZE
        out += [f"\tif (left < {off})", "\t\treturn -EBADMSG;", *run,
                f"\tp += {off};", f"\tleft -= {off};"]
        run, off = [], 0
        size = _data_size(f, count)
        terms = [f"{count} > {f.type.bound}", f"left {'!=' if last else '<'} {size}"]
        if isinstance(f.type, StringType):
            terms.append("memchr(p, 0, n)")
        out += [*cwrap.cond("if", terms, "||", 1), "\t\treturn -EBADMSG;"]
        if isinstance(f.type, ArrayType) and f.type.elem.size > 1:
            out += [f"\tfor (i = 0; i < {count}; i++)",
                    *_stmt(2, f"m->{f.name}[i] = "
                              f"{_get(f.type.elem, f'p + i * {f.type.elem.size}', 0)};")]
        else:
            out += _stmt(1, f"memcpy(m->{f.name}, p, {count});")
        if isinstance(f.type, StringType):
            out.append(f"\tm->{f.name}[n] = '\\0';")
        if not last:
            out += [f"\tp += {size};", f"\tleft -= {size};"]
    if run:
        out += [f"\tif (left != {off})", "\t\treturn -EBADMSG;", *run]
    return [*out, "\treturn 0;"]


def pack_body(msg: Message) -> list[str]:
    """Statements of ``<tag>_pack(m, buf, cap)`` for a message with fields."""
    if not any(f.is_var for f in msg.fields):
        out = [f"\tif (cap < {msg.min_size})", "\t\treturn -EMSGSIZE;"]
        off = 0
        for f in msg.fields:
            assert isinstance(f.type, ScalarType)
            out += _stmt(1, _put(f.type.int_type, f"m->{f.name}", "buf", off))
            off += f.type.int_type.size
        return [*out, f"\treturn {msg.min_size};"]

    strings = [f for f in msg.fields if isinstance(f.type, StringType)]
    out = ["\tu8 *p = buf;"]
    if strings:
        out.append("\tconst char *nul;")
        out += [f"\tsize_t {f.name}_len;" for f in strings]
    out.append("\tsize_t len;")
    if _has_wide_array(msg):
        out.append("\tu32 i;")
    out.append("")

    sizes = [str(msg.min_size)]
    for f in msg.fields:
        if isinstance(f.type, StringType):
            out += [f"\tnul = memchr(m->{f.name}, 0, sizeof(m->{f.name}));",
                    "\tif (!nul)", "\t\treturn -EMSGSIZE;",
                    f"\t{f.name}_len = nul - m->{f.name};"]
            sizes.append(f"{f.name}_len")
        elif isinstance(f.type, BytesType | ArrayType):
            count = f"m->{N.len_member(f)}"
            out += cwrap.cond("if", [f"{count} > {f.type.bound}"], "||", 1)
            out.append("\t\treturn -EMSGSIZE;")
            sizes.append(_data_size(f, count))
    out += cwrap.expr("\tlen = ", sizes, "+")
    out += ["\tif (len > cap)", "\t\treturn -EMSGSIZE;"]

    run: list[str] = []
    off = 0
    for idx, f in enumerate(msg.fields):
        last = idx == len(msg.fields) - 1
        if isinstance(f.type, ScalarType):
            run += _stmt(1, _put(f.type.int_type, f"m->{f.name}", "p", off))
            off += f.type.int_type.size
            continue
        lm = N.len_member(f)
        count = f"{f.name}_len" if lm is None else f"m->{lm}"
        run += _stmt(1, f"put_unaligned_le32({count}, {_at('p', off)});")
        off += LEN_SIZE
        out += [*run, f"\tp += {off};"]
        run, off = [], 0
        if isinstance(f.type, ArrayType) and f.type.elem.size > 1:
            out += [f"\tfor (i = 0; i < {count}; i++)",
                    *_stmt(2, _put(f.type.elem, f"m->{f.name}[i]",
                                   f"p + i * {f.type.elem.size}", 0))]
        else:
            out += _stmt(1, f"memcpy(p, m->{f.name}, {count});")
        if not last:
            out.append(f"\tp += {_data_size(f, count)};")
    return [*out, *run, "\treturn len;"]


def clear_body(msg: Message, var: str) -> list[str]:
    """Statements that give *var* (a pointer to an unzeroed ``msg``) what a
    handler may rely on: scalars, counts and strings zero.  Array and bytes
    contents stay as they are: only their first count elements are packed,
    and the handler writes those."""
    out: list[str] = []
    for f in msg.fields:
        if isinstance(f.type, ScalarType):
            out += _stmt(1, f"{var}->{f.name} = 0;")
        elif isinstance(f.type, StringType):
            out += _stmt(1, f"memset({var}->{f.name}, 0, sizeof({var}->{f.name}));")
        else:
            out += _stmt(1, f"{var}->{N.len_member(f)} = 0;")
    return out


def c_member_decls(f: Field) -> list[str]:
    t = f.type
    if isinstance(t, ScalarType):
        return [f"{t.int_type.name} {f.name};"]
    if isinstance(t, PagesType):
        return [f"u32 {f.name}_count;", f"struct page *{f.name}[{t.bound}];"]
    if isinstance(t, BytesType):
        return [f"u32 {f.name}_len;", f"u8 {f.name}[{t.bound}];"]
    if isinstance(t, StringType):
        return [f"char {f.name}[{t.bound + 1}];"]
    return [f"u32 {f.name}_count;", f"{t.elem.name} {f.name}[{t.bound}];"]


def paged_pack_body(msg: Message, fields_fn: str) -> list[str]:
    """``<tag>_pack()`` of a message with a pages<N> field: its count, then
    the other fields (``fields_fn``); the pages travel after the message."""
    f = msg.pages
    assert f is not None and isinstance(f.type, PagesType)
    return [
        "\tint len;",
        "",
        *cwrap.cond("if", [f"m->{f.name}_count > {f.type.bound}", f"cap < {LEN_SIZE}"], "||", 1),
        "\t\treturn -EMSGSIZE;",
        f"\tput_unaligned_le32(m->{f.name}_count, buf);",
        *_stmt(1, f"len = {fields_fn}(m, buf + {LEN_SIZE}, cap - {LEN_SIZE});"),
        f"\treturn len < 0 ? len : len + {LEN_SIZE};",
    ]


def paged_unpack_body(msg: Message, fields_fn: str) -> list[str]:
    """``<tag>_unpack()`` of a message with a pages<N> field: the count
    must be the number of pages that came, the other fields follow it
    (``fields_fn``), and @m points to the pages (it does not take them)."""
    f = msg.pages
    assert f is not None and isinstance(f.type, PagesType)
    return [
        "\tint ret;",
        "",
        *cwrap.cond("if", [f"len < {LEN_SIZE}", f"nr_pages > {f.type.bound}",
                           "get_unaligned_le32(buf) != nr_pages"], "||", 1),
        "\t\treturn -EBADMSG;",
        *_stmt(1, f"ret = {fields_fn}(m, buf + {LEN_SIZE}, len - {LEN_SIZE});"),
        "\tif (ret)",
        "\t\treturn ret;",
        f"\tm->{f.name}_count = nr_pages;",
        *_stmt(1, f"memcpy(m->{f.name}, pages, nr_pages * sizeof(*pages));"),
        "\treturn 0;",
    ]


# --- views for the templates ---------------------------------------------------


@dataclass(frozen=True)
class MsgView:
    which: N.Which
    tag: str
    empty: bool
    max_size: int
    max_macro: str
    summary: list[str]
    """The comment above the struct."""
    members: list[str]
    pack_fn: str
    unpack_fn: str
    pack_proto: list[str]
    unpack_proto: list[str]
    pack_def: list[str]
    unpack_def: list[str]
    pack_body: list[str]
    unpack_body: list[str]
    clear_body: list[str]
    """Statements clearing ``rep`` in a server dispatch (see clear_body())."""
    pages: str | None
    """The name of its pages<N> field, if it has one."""
    pages_bound: int
    fields_pack_def: list[str]
    """With pages: the static function packing the other fields."""
    fields_unpack_def: list[str]
    fields_pack_body: list[str]
    fields_unpack_body: list[str]
    fields_empty: bool


def comment(text: str, indent: str = "") -> list[str]:
    """A C comment: one line if it fits in 80 columns, else a block."""
    one = f"{indent}/* {text} */"
    if cwrap.width(one) <= cwrap.WIDTH:
        return [one]
    body = textwrap.wrap(text, width=cwrap.WIDTH - cwrap.width(indent) - 3,
                         break_long_words=False, break_on_hyphens=False)
    return [f"{indent}/*", *(f"{indent} * {line}" for line in body), f"{indent} */"]


def _msg_view(svc: Service, op: Op, which: N.Which, msg: Message) -> MsgView:
    tag = N.struct_tag(svc, op, which)
    pack, unpack = N.pack_fn(svc, op, which), N.unpack_fn(svc, op, which)
    u = UNUSED if msg.empty else ""
    unpack_params = [f"struct {tag} *m{u}", f"const u8 *buf{u}", "size_t len"]
    pf = msg.pages
    head = msg.head
    fpack, funpack = f"{pack}_fields", f"{unpack}_fields"
    hu = UNUSED if head.empty else ""
    if pf is not None:
        unpack_params = [f"struct {tag} *m", "const u8 *buf", "size_t len",
                         "struct page **pages", "unsigned int nr_pages"]
    return MsgView(
        which=which,
        tag=tag,
        empty=msg.empty,
        max_size=msg.max_size,
        max_macro=N.max_macro(svc, op, which),
        summary=comment(", ".join(f"{f.type.spec} {f.name}" for f in msg.fields) or "no fields"),
        members=[d for f in msg.fields for d in c_member_decls(f)],
        pack_fn=pack,
        unpack_fn=unpack,
        pack_proto=cwrap.func(f"int {pack}", [f"const struct {tag} *m", "u8 *buf",
                                              "size_t cap"], ";"),
        unpack_proto=cwrap.func(f"int {unpack}", [p.replace(UNUSED, "") for p in unpack_params],
                                ";"),
        pack_def=cwrap.func(f"int {pack}", [f"const struct {tag} *m{u}", f"u8 *buf{u}",
                                            f"size_t cap{u}"]),
        unpack_def=cwrap.func(f"int {unpack}", unpack_params),
        pack_body=([] if msg.empty else pack_body(msg)) if pf is None
        else paged_pack_body(msg, fpack),
        unpack_body=([] if msg.empty else unpack_body(msg)) if pf is None
        else paged_unpack_body(msg, funpack),
        clear_body=[] if msg.empty else clear_body(msg, "rep"),
        pages=None if pf is None else pf.name,
        pages_bound=pf.type.bound if pf is not None and isinstance(pf.type, PagesType) else 0,
        fields_pack_def=cwrap.func(f"static int {fpack}", [
            f"const struct {tag} *m{hu}", f"u8 *buf{hu}", f"size_t cap{hu}"]),
        fields_unpack_def=cwrap.func(f"static int {funpack}", [
            f"struct {tag} *m{hu}", f"const u8 *buf{hu}", "size_t len"]),
        fields_pack_body=[] if head.empty else pack_body(head),
        fields_unpack_body=[] if head.empty else unpack_body(head),
        fields_empty=head.empty,
    )


@dataclass(frozen=True)
class OpView:
    name: str
    id: int
    version: int
    oneway: bool
    op_macro: str
    version_macro: str
    stub: str
    handler: str
    dispatch: str
    req: MsgView
    rep: MsgView | None
    stub_proto: list[str]
    stub_def: list[str]
    handler_proto: list[str]
    dispatch_def: list[str]
    wire_call: list[str]
    """The ics_call()/ics_send() statement of the client stub."""
    paged: bool
    """Its request or reply has a pages<N> field: ics_call_pages(), dispatch_pages."""


def _op_view(svc: Service, op: Op) -> OpView:
    req = _msg_view(svc, op, "req", op.req)
    rep = None if op.rep is None else _msg_view(svc, op, "rep", op.rep)
    stub, handler, dispatch = N.stub_fn(svc, op), N.handler_fn(svc, op), N.dispatch_fn(svc, op)
    ru = UNUSED if req.empty else ""
    wire_head = [
        "node", svc.chan.c_name, N.service_macro(svc), N.op_macro(svc, op),
        N.op_version_macro(svc, op),
    ]
    if rep is None:
        stub_params = ["unsigned int node", f"const struct {req.tag} *msg"]
        stub_def_params = ["unsigned int node", f"const struct {req.tag} *msg{ru}"]
        handler_proto = cwrap.func(f"void {handler}", ["unsigned int from",
                                                       f"const struct {req.tag} *msg"], ";")
        dispatch_params = ["unsigned int from", "const void *req_buf", "size_t req_len",
                           f"void *rep_buf{UNUSED}", f"size_t rep_cap{UNUSED}"]
        wire_call = cwrap.call(
            "\tret = ics_send" if not req.empty else "\treturn ics_send",
            [*wire_head, *(["NULL", "0"] if req.empty else ["buf", "len"])], ";")
    else:
        stub_params = ["unsigned int node", f"const struct {req.tag} *req",
                       f"struct {rep.tag} *rep", "unsigned long timeout"]
        stub_def_params = ["unsigned int node", f"const struct {req.tag} *req{ru}",
                           f"struct {rep.tag} *rep", "unsigned long timeout"]
        handler_proto = cwrap.func(f"int {handler}", [
            "unsigned int from", f"const struct {req.tag} *req", f"struct {rep.tag} *rep"], ";")
        dispatch_params = ["unsigned int from", "const void *req_buf", "size_t req_len",
                           "void *rep_buf", "size_t rep_cap"]
        if op.paged:
            wire_call = cwrap.call("\tret = ics_call_pages", [
                *wire_head,
                *(["NULL", "0"] if req.empty else ["req_buf", "req_len"]),
                *([f"req->{req.pages}", f"req->{req.pages}_count"] if req.pages
                  else ["NULL", "0"]),
                "&r", "0" if rep.empty else rep.max_macro, str(rep.pages_bound), "timeout"],
                ";")
        else:
            wire_call = cwrap.call(
                "\tret = ics_call" if rep.empty else "\tret = ics_call_take", [
                    *wire_head,
                    *(["NULL", "0"] if req.empty else ["req_buf", "req_len"]),
                    *(["NULL", "0"] if rep.empty else ["&rep_buf", rep.max_macro]),
                    "&rep_len", "timeout"], ";")
    return OpView(
        name=op.name,
        id=op.id,
        version=op.version,
        oneway=op.oneway,
        op_macro=N.op_macro(svc, op),
        version_macro=N.op_version_macro(svc, op),
        stub=stub,
        handler=handler,
        dispatch=dispatch,
        req=req,
        rep=rep,
        stub_proto=cwrap.func(f"int {stub}", stub_params, ";"),
        stub_def=cwrap.func(f"int {stub}", stub_def_params),
        handler_proto=handler_proto,
        dispatch_def=cwrap.func(f"static int {dispatch}", [
            "unsigned int from", "struct ics_msg *req_msg", "struct ics_msg *rep_msg"])
        if op.paged else cwrap.func(f"static int {dispatch}", dispatch_params),
        wire_call=wire_call,
        paged=op.paged,
    )


def _context(svc: Service) -> dict[str, object]:
    ops = [_op_view(svc, op) for op in svc.ops]
    defines: list[list[str]] = []
    for op, v in zip(svc.ops, ops, strict=True):
        pairs = [(v.op_macro, str(op.id)), (v.version_macro, str(op.version)),
                 (v.req.max_macro, str(v.req.max_size))]
        if v.rep is not None:
            pairs.append((v.rep.max_macro, str(v.rep.max_size)))
        defines.append(cwrap.defines(pairs))
    return {
        "svc": svc,
        "ops": ops,
        "op_defines": defines,
        "guard": N.header_guard(svc),
        "service_define": cwrap.defines([(N.service_macro(svc), str(svc.id))]),
        "service_macro": N.service_macro(svc),
        "ops_array": N.ops_array(svc),
        "service_var": N.service_var(svc),
        "header": f"{svc.name}_ics.h",
        "chan": svc.chan.c_name,
    }


def render(svc: Service) -> dict[str, str]:
    """File name -> content of the three C files for ``svc``."""
    ctx = _context(svc)
    e = env()
    return {
        f"{svc.name}_ics.h": e.get_template("ics.h.j2").render(ctx),
        f"{svc.name}_ics_wire.c": e.get_template("ics_wire.c.j2").render(ctx),
        f"{svc.name}_ics.c": e.get_template("ics.c.j2").render(ctx),
    }
