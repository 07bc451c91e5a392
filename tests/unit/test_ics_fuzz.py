"""genmod.ics generated C under ASan/UBSan: hostile bodies, agreement with the Python codec,
and the client stubs and server dispatch run back to back through a fake ics_call()."""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from genmod.ics import generate, harness, parse, parse_file, shim_dir
from genmod.ics.model import Service

REPO = Path(__file__).resolve().parents[2]
ICS_TEST = REPO / "kernel" / "ics" / "ics_test.ics"
GCC = shutil.which("gcc")
SAN = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
       "-fno-omit-frame-pointer"]
WARN = ["-std=gnu11", "-Wall", "-Wextra", "-Werror"]
SAN_ENV = {**os.environ, "ASAN_OPTIONS": "abort_on_error=0:exitcode=99:detect_leaks=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:exitcode=98"}

pytestmark = pytest.mark.skipif(GCC is None, reason="gcc absent")


def ics_h_dir() -> Path:
    for d in (REPO / "kernel" / "include", REPO / "kernel" / "ics"):
        if (d / "ics.h").is_file():
            return d
    pytest.fail("ics.h not found under kernel/")


def _sanitizers_work(tmp: Path) -> bool:
    src = tmp / "san.c"
    src.write_text("int main(void) { return 0; }\n")
    r = subprocess.run([str(GCC), *SAN, str(src), "-o", str(tmp / "san")], capture_output=True)
    return r.returncode == 0 and subprocess.run([str(tmp / "san")], env=SAN_ENV).returncode == 0


@dataclass
class Built:
    svc: Service
    exe: Path
    py: ModuleType


def _load(path: Path) -> ModuleType:
    name = f"_icsfuzz_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _build(out: Path, spec: Path) -> Built:
    generate(spec, out)
    svc = parse_file(spec)
    src = out / f"{svc.name}_harness.c"
    src.write_text(harness.c_source(svc))
    exe = out / f"{svc.name}_harness"
    r = subprocess.run([str(GCC), *WARN, *SAN, "-I", str(shim_dir()), "-I", str(out), str(src),
                        str(out / f"{svc.name}_ics_wire.c"), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return Built(svc, exe, _load(out / f"{svc.name}_ics.py"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    out = tmp_path_factory.mktemp("icsfuzz")
    if not _sanitizers_work(out):
        pytest.skip("gcc cannot build/run -fsanitize=address,undefined programs here")
    (out / "zoo.ics").write_text(harness.ZOO_SPEC)
    return {"zoo": _build(out, out / "zoo.ics"), "ics_test": _build(out, ICS_TEST)}


def run_harness(b: Built, cases: list[tuple[int, bytes]], extra: str = "") -> list[str]:
    stdin = extra + "".join(f"U {i} {d.hex() or '-'}\n" for i, d in cases)
    r = subprocess.run([str(b.exe)], input=stdin, capture_output=True, text=True, env=SAN_ENV,
                       timeout=600)
    assert r.returncode == 0, (r.stdout[-2000:] + r.stderr[-6000:])
    lines = r.stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith("FAIL")], lines
    return lines


def python_result(b: Built, idx: int, data: bytes) -> str:
    _, cls_name, msg, _ = harness.messages(b.svc)[idx]
    try:
        obj = getattr(b.py, cls_name).unpack(data)
    except ValueError:
        return "ERR"
    return f"OK {data.hex() or '-'}{harness.py_dump(msg, obj)}"


@pytest.mark.parametrize("name", ["zoo", "ics_test"])
def test_pack_bounds_in_c(built: dict[str, Built], name: str) -> None:
    """Every length, count and string packs at its bound and gives -EMSGSIZE over it."""
    assert run_harness(built[name], [], extra="X\n") == ["XOK"]


@pytest.mark.parametrize("name", ["zoo", "ics_test"])
def test_c_and_python_agree_on_valid_messages(built: dict[str, Built], name: str) -> None:
    """Python packs random values; C unpacks them to the same values and packs the same
    bytes back (the harness prints its own pack output as hex)."""
    b = built[name]
    rng = random.Random(20240601)
    cases: list[tuple[int, bytes]] = []
    expect: list[str] = []
    for idx, (_, cls_name, msg, _) in enumerate(harness.messages(b.svc)):
        cls = getattr(b.py, cls_name)
        for _ in range(40):
            obj = cls(**harness.random_values(msg, rng))
            data = obj.pack()
            cases.append((idx, data))
            expect.append(f"OK {data.hex() or '-'}{harness.py_dump(msg, obj)}")
    assert run_harness(b, cases) == expect


def hostile(b: Built, rng: random.Random) -> list[tuple[int, bytes]]:
    cases: list[tuple[int, bytes]] = []
    for idx, (_, cls_name, msg, _) in enumerate(harness.messages(b.svc)):
        cls = getattr(b.py, cls_name)
        valid = [cls(**harness.random_values(msg, rng)).pack() for _ in range(10)]
        for v in valid[:3]:
            cuts = range(len(v)) if len(v) <= 1024 else sorted(
                {*range(64), *range(len(v) - 64, len(v)), *rng.sample(range(len(v)), 64)})
            cases += [(idx, v[:n]) for n in cuts]  # truncated at every length
        for v in valid:
            cases.append((idx, v + bytes([rng.randrange(256)])))  # trailing bytes
            cases.append((idx, v + bytes(4)))
            for off, bound in harness.prefix_offsets(msg, v):  # lengths and counts
                cur = int.from_bytes(v[off:off + 4], "little")
                for n in {bound, bound + 1, bound + 2, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF,
                          cur + 1, max(cur - 1, 0), 0}:
                    cases.append((idx, v[:off] + n.to_bytes(4, "little") + v[off + 4:]))
            for off, n in harness.string_spans(msg, v):  # NUL inside a string
                if n:
                    pos = off + rng.randrange(n)
                    cases.append((idx, v[:pos] + b"\0" + v[pos + 1:]))
            for _ in range(4):  # random byte and bit damage
                if v:
                    pos = rng.randrange(len(v))
                    cases.append((idx, v[:pos] + bytes([v[pos] ^ (1 << rng.randrange(8))])
                                  + v[pos + 1:]))
        for _ in range(40):  # random bytes
            n = rng.choice([0, 1, 2, 3, 4, 5, 8, rng.randrange(min(msg.max_size, 4096) + 9)])
            cases.append((idx, rng.randbytes(n)))
    return cases


@pytest.mark.parametrize("name", ["zoo", "ics_test"])
def test_hostile_bodies(built: dict[str, Built], name: str) -> None:
    """Never a crash or sanitizer report; always -EBADMSG or a struct that packs back to
    exactly the input; and the Python codec accepts and rejects exactly the same bodies."""
    b = built[name]
    cases = hostile(b, random.Random(7))
    assert len(cases) > (2000 if name == "zoo" else 1000)
    got = run_harness(b, cases)
    want = [python_result(b, i, d) for i, d in cases]
    assert len(got) == len(want)
    diff = [(cases[k], got[k], want[k]) for k in range(len(cases)) if got[k] != want[k]]
    assert not diff, diff[:5]
    ok = sum(1 for g in got if g.startswith("OK"))
    assert 0 < ok < len(got) - 500  # both outcomes well covered


LOOPBACK = r"""
#include <stdio.h>
#include <stdlib.h>
#include <linux/errno.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/types.h>

#include "ics.h"
#include "ics_test_ics.h"

static int failed, corrupt_reply, pings, info_writes_nothing;
static u64 last_ping;

#define CHECK(c) do { if (!(c)) { printf("FAIL line %d: %s\n", __LINE__, #c); failed = 1; } } \
    while (0)

int ics_test_srv_null(unsigned int from, const struct ics_test_null_req *req,
              struct ics_test_null_rep *rep)
{
    (void)req; (void)rep;
    return from == 5 ? 0 : -EINVAL;
}

int ics_test_srv_echo(unsigned int from, const struct ics_test_echo_req *req,
              struct ics_test_echo_rep *rep)
{
    if (req->seq == 13)
        return -EPERM;
    rep->seq = req->seq + from;
    rep->data_len = req->data_len;
    memcpy(rep->data, req->data, req->data_len);
    return 0;
}

void ics_test_srv_ping(unsigned int from, const struct ics_test_ping_req *msg)
{
    pings++;
    last_ping = msg->seq + msg->from + from;
}

int ics_test_srv_info(unsigned int from, const struct ics_test_info_req *req,
              struct ics_test_info_rep *rep)
{
    (void)from; (void)req;
    if (info_writes_nothing)
        return 0;   /* what it gets must pack as zeros, not heap contents */
    rep->node = 7;
    strcpy(rep->release, "6.1.0-ssi");
    rep->peers_count = 63;
    for (u32 i = 0; i < 63; i++)
        rep->peers[i] = i + 1;
    return 0;
}

static const struct ics_op *find(u16 op, u16 version)
{
    for (unsigned int i = 0; i < ics_test_ics_service.nr_ops; i++)
        if (ics_test_ics_service.ops[i].op == op &&
            ics_test_ics_service.ops[i].version == version)
            return &ics_test_ics_service.ops[i];
    return NULL;
}

/* Pages in userspace: a reference count and the bytes. */
struct page {
    int refs;
    u8 data[4096];
};
static int live_pages;

static struct page *page_new(u8 fill)
{
    struct page *p = calloc(1, sizeof(*p));

    p->refs = 1;
    memset(p->data, fill, sizeof(p->data));
    live_pages++;
    return p;
}

void ics_put_pages(struct page *const *pages, unsigned int nr)
{
    for (unsigned int i = 0; pages && i < nr; i++) {
        if (pages[i] && --pages[i]->refs == 0) {
            free(pages[i]);
            live_pages--;
        }
    }
}

int ics_test_srv_echo_pages(unsigned int from, const struct ics_test_echo_pages_req *req,
                struct ics_test_echo_pages_rep *rep)
{
    for (u32 i = 0; i < req->data_count; i++) {
        req->data[i]->refs++;   /* get_page(): the reply's reference */
        rep->data[i] = req->data[i];
    }
    rep->data_count = req->data_count;
    rep->seq = req->seq + from;
    return req->seq == 13 ? -EPERM : 0;   /* a failing handler's pages are put */
}

/* The ICS core for pages: the receiver gets copies, each side puts its own. */
static struct page **copy_pages(struct page *const *pages, unsigned int nr)
{
    struct page **out = calloc(nr + 1, sizeof(*out));

    for (unsigned int i = 0; i < nr; i++) {
        out[i] = page_new(0);
        memcpy(out[i]->data, pages[i]->data, sizeof(out[i]->data));
    }
    return out;
}

int ics_call_pages(unsigned int node, enum ics_chan chan, u16 service, u16 op,
           u16 op_version, const void *req, size_t req_len,
           struct page *const *req_pages, unsigned int nr_req_pages,
           struct ics_msg *rep, size_t rep_cap, unsigned int rep_max_pages,
           unsigned long timeout)
{
    const struct ics_op *o = find(op, op_version);
    struct ics_msg q = {}, r = {};
    int ret;

    memset(rep, 0, sizeof(*rep));
    CHECK(node == 2 && chan == ICS_CHAN_BULK && service == ICS_TEST_ICS_SERVICE);
    CHECK(timeout == 100 && rep_cap == o->rep_max && rep_max_pages == o->rep_pages);
    if (!o || !o->dispatch_pages)
        return -EPROTONOSUPPORT;
    CHECK((req_pages != NULL) == (o->req_pages != 0) && nr_req_pages <= o->req_pages);
    q.buf = malloc(req_len + 1);
    memcpy(q.buf, req, req_len);
    q.len = req_len;
    q.pages = copy_pages(req_pages, nr_req_pages);
    q.nr_pages = nr_req_pages;
    r.buf = malloc(o->rep_max + 1);
    r.len = o->rep_max;
    r.pages = calloc(o->rep_pages + 1, sizeof(*r.pages));
    ret = o->dispatch_pages(5, &q, &r);
    ics_put_pages(q.pages, q.nr_pages);    /* the request's: ICS puts them */
    free(q.pages);
    free(q.buf);
    if (ret >= 0) {
        CHECK((size_t)ret <= o->rep_max && r.nr_pages <= o->rep_pages);
        rep->buf = r.buf;
        rep->len = ret;
        rep->pages = copy_pages(r.pages, r.nr_pages);
        rep->nr_pages = r.nr_pages;
    } else {
        free(r.buf);
        CHECK(r.nr_pages == 0);
    }
    ics_put_pages(r.pages, r.nr_pages);    /* sent: ICS puts them */
    free(r.pages);
    return ret < 0 ? ret : 0;
}

/* The ICS core, minus the network: copy, dispatch as node 5, copy back. */
static int deliver(unsigned int node, enum ics_chan chan, u16 service, u16 op, u16 op_version,
           const void *req, size_t req_len, bool oneway, void *rep, size_t rep_cap,
           size_t *rep_len)
{
    const struct ics_op *o = find(op, op_version);
    u8 *in, *out;
    int ret;

    CHECK(node == 2 && chan == ICS_CHAN_BULK && service == ICS_TEST_ICS_SERVICE);
    CHECK(req_len <= ICS_MAX_BODY && (req || !req_len));
    if (!o || o->oneway != oneway)
        return -EPROTONOSUPPORT;
    in = malloc(req_len + 1);
    if (req_len)
        memcpy(in, req, req_len);
    out = malloc(o->rep_max + 1);
    ret = o->dispatch(5, in, req_len, o->rep_max ? out : NULL, o->rep_max);
    free(in);
    if (oneway) {
        CHECK(ret <= 0);
        free(out);
        return 0;
    }
    if (ret < 0) {
        free(out);
        return ret;
    }
    CHECK((size_t)ret <= o->rep_max);
    if (corrupt_reply)
        out[ret++] = 0x42;
    if ((size_t)ret > rep_cap) {
        free(out);
        return -EMSGSIZE;
    }
    if (ret)
        memcpy(rep, out, ret);
    *rep_len = ret;
    free(out);
    return 0;
}

int ics_call(unsigned int node, enum ics_chan chan, u16 service, u16 op, u16 op_version,
         const void *req, size_t req_len, void *rep, size_t rep_cap, size_t *rep_len,
         unsigned long timeout)
{
    CHECK(timeout == 100);
    CHECK(rep || !rep_cap);
    return deliver(node, chan, service, op, op_version, req, req_len, false, rep, rep_cap,
               rep_len);
}

int ics_call_take(unsigned int node, enum ics_chan chan, u16 service, u16 op,
          u16 op_version, const void *req, size_t req_len, void **rep, size_t rep_cap,
          size_t *rep_len, unsigned long timeout)
{
    /* as the kernel's: the buffer the reply arrived in, exactly its size */
    void *buf = kvmalloc(rep_cap, GFP_KERNEL);
    int ret;

    CHECK(timeout == 100);
    CHECK(rep_cap);
    *rep = NULL;
    if (!buf)
        return -ENOMEM;
    ret = deliver(node, chan, service, op, op_version, req, req_len, false, buf, rep_cap,
                  rep_len);
    if (ret) {
        free(buf);
        return ret;
    }
    *rep = *rep_len ? realloc(buf, *rep_len) : (free(buf), NULL);
    CHECK(*rep || !*rep_len);
    return 0;
}

int ics_send(unsigned int node, enum ics_chan chan, u16 service, u16 op, u16 op_version,
         const void *msg, size_t len)
{
    return deliver(node, chan, service, op, op_version, msg, len, true, NULL, 0, NULL);
}

int main(void)
{
    struct ics_test_echo_req *req = calloc(1, sizeof(*req));
    struct ics_test_echo_rep *rep = calloc(1, sizeof(*rep));
    struct ics_test_info_rep *irep = calloc(1, sizeof(*irep));
    struct ics_test_null_req nreq = {};
    struct ics_test_null_rep nrep = {};
    struct ics_test_info_req ireq = {};
    struct ics_test_ping_req ping = { .seq = 40, .from = 1 };
    const struct ics_op *o;
    u8 junk[3] = { 1, 2, 3 };
    u8 *buf = malloc(ICS_MAX_BODY);
    int ret, n, ok;

    /* the service table */
    CHECK(ics_test_ics_service.id == 1 && ics_test_ics_service.nr_ops == 5);
    CHECK(ics_test_ics_service.chan == ICS_CHAN_BULK && !ics_test_ics_service.owner);
    CHECK(!strcmp(ics_test_ics_service.name, "ics_test"));
    CHECK(find(1, 1) && !find(1, 1)->oneway && find(1, 1)->rep_max == 0);
    CHECK(find(2, 1) && find(2, 1)->rep_max == ICS_TEST_ECHO_REP_MAX);
    CHECK(find(3, 1) && find(3, 1)->oneway && find(3, 1)->rep_max == 0);
    CHECK(find(4, 1) && find(4, 1)->rep_max == ICS_TEST_INFO_REP_MAX && !find(4, 2));

    /* calls and one-way messages end to end */
    req->seq = 5;
    req->data_len = sizeof(req->data);
    for (n = 0; n < (int)sizeof(req->data); n++)
        req->data[n] = (u8)(n * 7 + 1);
    CHECK(ics_ics_test_echo(2, req, rep, 100) == 0);
    CHECK(rep->seq == 10 && rep->data_len == req->data_len &&
          !memcmp(rep->data, req->data, req->data_len));
    CHECK(ics_ics_test_null(2, &nreq, &nrep, 100) == 0);
    CHECK(ics_ics_test_info(2, &ireq, irep, 100) == 0);
    CHECK(irep->node == 7 && !strcmp(irep->release, "6.1.0-ssi") &&
          irep->peers_count == 63 && irep->peers[62] == 63);
    CHECK(ics_ics_test_ping(2, &ping) == 0 && pings == 1 && last_ping == 46);
    info_writes_nothing = 1;
    CHECK(ics_ics_test_info(2, &ireq, irep, 100) == 0);
    CHECK(irep->node == 0 && !irep->release[0] && irep->peers_count == 0);
    info_writes_nothing = 0;

    /* errors: handler, pack bound, malformed and oversized replies */
    req->seq = 13;
    CHECK(ics_ics_test_echo(2, req, rep, 100) == -EPERM);
    req->seq = 1;
    req->data_len = sizeof(req->data) + 1;
    CHECK(ics_ics_test_echo(2, req, rep, 100) == -EMSGSIZE);
    req->data_len = 3;
    corrupt_reply = 1;
    CHECK(ics_ics_test_echo(2, req, rep, 100) == -EBADMSG);
    CHECK(ics_ics_test_info(2, &ireq, irep, 100) == -EBADMSG);
    CHECK(ics_ics_test_null(2, &nreq, &nrep, 100) == -EMSGSIZE);
    corrupt_reply = 0;

    /* pages<N>: the stub sends the caller's pages; the reply's are the caller's */
    {
        struct ics_test_echo_pages_req *preq = calloc(1, sizeof(*preq));
        struct ics_test_echo_pages_rep *prep = calloc(1, sizeof(*prep));

        o = find(ICS_TEST_ICS_OP_ECHO_PAGES, 1);
        CHECK(o && o->dispatch_pages && !o->dispatch && o->req_pages == 16 &&
              o->rep_pages == 16 && o->rep_max == 8);
        preq->seq = 3;
        preq->data_count = 2;
        preq->data[0] = page_new(0x11);
        preq->data[1] = page_new(0x22);
        CHECK(ics_ics_test_echo_pages(2, preq, prep, 100) == 0);
        CHECK(prep->seq == 8 && prep->data_count == 2 && prep->data[0]->data[4095] == 0x11 &&
              prep->data[1]->data[0] == 0x22 && prep->data[0] != preq->data[0]);
        CHECK(prep->data[0]->refs == 1 && preq->data[0]->refs == 1 && live_pages == 4);
        ics_put_pages(prep->data, prep->data_count);
        CHECK(live_pages == 2);
        preq->seq = 13;
        CHECK(ics_ics_test_echo_pages(2, preq, prep, 100) == -EPERM && live_pages == 2);
        preq->seq = 1;
        preq->data_count = 17;
        CHECK(ics_ics_test_echo_pages(2, preq, prep, 100) == -EMSGSIZE && live_pages == 2);
        preq->data_count = 0;
        CHECK(ics_ics_test_echo_pages(2, preq, prep, 100) == 0 && prep->data_count == 0);
        /* a request whose count is not the number of pages that came */
        {
            u8 body[8] = { 1, 0, 0, 0, 9, 0, 0, 0 };
            struct ics_msg q = { .buf = body, .len = sizeof(body) };
            struct ics_msg r = { .buf = buf, .len = o->rep_max };
            struct page *none[16] = {};

            r.pages = none;
            CHECK(o->dispatch_pages(5, &q, &r) == -EBADMSG && r.nr_pages == 0);
        }
        ics_put_pages(preq->data, 2);
        CHECK(live_pages == 0);
        free(prep);
        free(preq);
    }

    /* dispatch rejects malformed requests */
    o = find(ICS_TEST_ICS_OP_ECHO, 1);
    CHECK(o->dispatch(5, junk, sizeof(junk), buf, o->rep_max) == -EBADMSG);
    o = find(ICS_TEST_ICS_OP_NULL, 1);
    CHECK(o->dispatch(5, junk, 1, NULL, 0) == -EBADMSG);
    o = find(ICS_TEST_ICS_OP_PING, 1);
    CHECK(o->dispatch(5, junk, sizeof(junk), NULL, 0) == -EBADMSG && pings == 1);
    o = find(ICS_TEST_ICS_OP_INFO, 1);
    CHECK(o->dispatch(5, NULL, 0, buf, o->rep_max) == 4 + 4 + 9 + 4 + 63 * 4);

    /* allocation failure at every step unwinds (LeakSanitizer checks the frees) */
    for (n = 0; n < 6; n++) {
        ics_shim_allocs_left = n;
        ret = ics_ics_test_echo(2, req, rep, 100);
        ok = n < 4 ? ret == -ENOMEM : ret == 0;
        CHECK(ok || (printf("echo, %d allocations: %d\n", n, ret), 0));
        ics_shim_allocs_left = n;
        ret = ics_ics_test_info(2, &ireq, irep, 100);
        CHECK(n < 2 ? ret == -ENOMEM : ret == 0);
        ics_shim_allocs_left = n;
        ret = ics_ics_test_ping(2, &ping);
        /* the receiver's allocation failure is not the sender's */
        CHECK(n < 1 ? ret == -ENOMEM : ret == 0);
        ics_shim_allocs_left = n;
        ret = ics_ics_test_null(2, &nreq, &nrep, 100);
        CHECK(ret == 0);
    }
    ics_shim_allocs_left = -1;

    free(buf);
    free(irep);
    free(rep);
    free(req);
    if (!failed)
        printf("ALL OK\n");
    return failed;
}
"""


def test_stubs_and_dispatch_loopback(tmp_path: Path) -> None:
    """ics_<svc>_<op>() -> fake ics_call() -> <svc>_<op>_dispatch() -> handler, in userspace."""
    if not _sanitizers_work(tmp_path):
        pytest.skip("gcc cannot build/run -fsanitize=address,undefined programs here")
    generate(ICS_TEST, tmp_path)
    (tmp_path / "loop.c").write_text(LOOPBACK)
    exe = tmp_path / "loop"
    r = subprocess.run([str(GCC), *WARN, *SAN, "-Wno-unused-parameter",
                        "-I", str(shim_dir()), "-I", str(tmp_path), "-I", str(ics_h_dir()),
                        str(tmp_path / "loop.c"), str(tmp_path / "ics_test_ics.c"),
                        str(tmp_path / "ics_test_ics_wire.c"), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, env=SAN_ENV, timeout=120)
    assert (r.returncode, r.stdout) == (0, "ALL OK\n"), r.stdout + r.stderr[-6000:]


def test_zoo_spec_parses() -> None:
    svc = parse(harness.ZOO_SPEC, "zoo.ics")
    assert len(harness.messages(svc)) == 16
