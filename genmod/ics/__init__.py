"""genmod.ics: the ICS interface compiler.

Reads ``kernel/<subsys>/*.ics`` specs (genmod/ICS-SPEC.md) and writes, per
service ``<svc>``, into an output directory:

- ``<svc>_ics.h``       structs, constants, pack/unpack, stub and handler prototypes
- ``<svc>_ics_wire.c``  pack/unpack (also builds in userspace against ``shim/``)
- ``<svc>_ics.c``       client stubs, server dispatch, ``<svc>_ics_service``
- ``<svc>_ics.py``      Python codec (stdlib only) with a ``DECODERS`` table

API: :func:`generate` (one spec), :func:`generate_all` (several, with
cross-service checks), :func:`parse_file`; CLI: ``python -m genmod.ics SPEC...
--out DIR``.  Errors are :class:`SpecError` (a GenmodError), ``file:line:col: ...``.

Module build: the module that implements the handlers ``<svc>_srv_<op>()``
compiles ``<svc>_ics.c`` and ``<svc>_ics_wire.c`` with the output directory
and ``kernel/include`` (ics.h) on the include path, and registers
``&<svc>_ics_service`` with ics_register_service().  ``shim/`` lets host
tests build the same files in userspace (see shim/README).
"""

from genmod.ics.generate import generate, generate_all, render, shim_dir
from genmod.ics.model import Service, SpecError
from genmod.ics.parser import parse, parse_file

__all__ = [
    "Service",
    "SpecError",
    "generate",
    "generate_all",
    "parse",
    "parse_file",
    "render",
    "shim_dir",
]
