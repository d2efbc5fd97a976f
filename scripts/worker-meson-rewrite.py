#!/usr/bin/env python3
"""Rewrite mediasoup's worker meson files to build against Debian 12 libraries.

Upstream's meson.build pulls every third-party library in as a meson
subproject, which downloads sources at configure time. This machine only
reaches Debian's archive and npm, so we swap each subproject for the matching
system package found through pkg-config. mediasoup 3.12.16's pinned
subprojects match Debian 12's versions (abseil 20220623, libsrtp 2.5, libuv
1.44, openssl 3.0, usrsctp, nlohmann-json), which is why that release is used.

Usage: worker-meson-rewrite.py <copied worker dir>

The edits are deliberately explicit and every one asserts that the text it
expects is present: if a different mediasoup version changes the layout, this
fails loudly instead of producing a worker that silently links something else.
This file is part of the build-worker.sh cache key, so editing it rebuilds.
"""

import re
import sys
from pathlib import Path

# Subprojects upstream declares at top level. catch2 only feeds the C++ unit
# tests, whose section we drop below.
EXPECTED_SUBPROJECTS = {
    "openssl", "nlohmann_json", "libuv", "libsrtp2", "usrsctp", "abseil_cpp", "catch2",
}

# System replacements, declared once in the top-level file before
# subdir('deps/libwebrtc') so that the libwebrtc file sees them too (meson
# subdirs share the parent's variable scope).
SYSTEM_DEPS = """\
# --- callhub: system libraries instead of downloaded subprojects ---
openssl_dep = dependency('openssl')
nlohmann_json_dep = dependency('nlohmann_json')
libuv_dep = dependency('libuv')
# Debian installs srtp.h under /usr/include/srtp2 but its .pc file only adds
# -I/usr/include, while the worker does #include <srtp.h>.
libsrtp2_system_dep = dependency('libsrtp2')
libsrtp2_dep = declare_dependency(
  dependencies: libsrtp2_system_dep,
  compile_args: ['-I' + libsrtp2_system_dep.get_variable(pkgconfig: 'includedir') / 'srtp2'],
)
usrsctp_dep = dependency('usrsctp')
absl_container_dep = declare_dependency(
  dependencies: [dependency('absl_flat_hash_map'), dependency('absl_btree')],
)
absl_strings_dep = dependency('absl_strings')
absl_types_dep = dependency('absl_optional')
# --- end callhub ---
"""

# `<x>_proj.get_variable('<name>')` -> variable defined in SYSTEM_DEPS.
VARIABLE_MAP = {
    "absl_container_dep": "absl_container_dep",
    "absl_strings_dep": "absl_strings_dep",
    "absl_types_dep": "absl_types_dep",
    "openssl_dep": "openssl_dep",
    "nlohmann_json_dep": "nlohmann_json_dep",
    "libuv_dep": "libuv_dep",
    "libsrtp2_dep": "libsrtp2_dep",
    "usrsctp_dep": "usrsctp_dep",
}

# A top-level `name_proj = subproject(...)` block; upstream closes it with a
# ")" in column 0.
SUBPROJECT_BLOCK = re.compile(r"^(\w+)_proj = subproject\(.*?^\)\n\n?", re.S | re.M)
GET_VARIABLE = re.compile(r"\w+_proj\.get_variable\('(\w+)'\)")


def fail(msg):
    sys.exit(f"worker-meson-rewrite: {msg}")


def replace_once(text, old, new, what):
    if text.count(old) != 1:
        fail(f"expected exactly one {what!r} in meson.build, found {text.count(old)}")
    return text.replace(old, new)


def map_get_variables(text, path):
    def sub(m):
        name = m.group(1)
        if name not in VARIABLE_MAP:
            fail(f"{path}: no system replacement for get_variable('{name}')")
        return VARIABLE_MAP[name]

    return GET_VARIABLE.sub(sub, text)


def rewrite_top(path):
    text = path.read_text()

    # Debian 12 ships meson 1.0.1; nothing the worker uses needs 1.1.
    text, n = re.subn(r"meson_version: '>= 1\.1\.0'", "meson_version: '>= 1.0.0'", text)
    if n != 1:
        fail("meson_version '>= 1.1.0' not found")

    found = set(SUBPROJECT_BLOCK.findall(text))
    if found != EXPECTED_SUBPROJECTS:
        fail(f"subprojects changed: found {sorted(found)}, expected {sorted(EXPECTED_SUBPROJECTS)}")
    text = SUBPROJECT_BLOCK.sub("", text)

    text = replace_once(
        text,
        "cpp = meson.get_compiler('cpp')\n",
        "cpp = meson.get_compiler('cpp')\n\n" + SYSTEM_DEPS,
        "cpp = meson.get_compiler('cpp')",
    )

    # System libraries are shared objects found by the dynamic linker; only
    # the in-tree libwebrtc is a static library that must be linked whole.
    m = re.search(r"^link_whole = \[\n(.*?)^\]\n", text, re.S | re.M)
    if not m or "libwebrtc," not in m.group(1):
        fail("link_whole list not found")
    text = text[: m.start()] + "link_whole = [\n  libwebrtc,\n]\n" + text[m.end():]

    # The Windows-only wingetopt subproject lives inside an if block; this is
    # a Linux-only build, so drop the block rather than leave a download path.
    text, n = re.subn(
        r"^if host_machine\.system\(\) == 'windows'\n  wingetopt_proj = subproject\(.*?^endif\n\n",
        "", text, flags=re.S | re.M,
    )
    if n != 1:
        fail("windows wingetopt block not found")

    # The catch2 unit-test executables (and their test() registrations) need
    # the catch2 subproject; mediasoup's Node suite is what we run instead.
    start = text.find("test_sources = [\n")
    end = text.find("executable(\n  'mediasoup-worker-fuzzer'")
    if start < 0 or end < 0 or end < start:
        fail("catch2 test section not found")
    text = text[:start] + text[end:]

    text = map_get_variables(text, path)
    if "subproject(" in text or "get_variable('" in text:
        fail(f"{path}: leftover subproject reference")
    path.write_text(text)


def rewrite_libwebrtc(path):
    text = path.read_text()
    found = set(SUBPROJECT_BLOCK.findall(text))
    if found != {"abseil_cpp"}:
        fail(f"{path}: subprojects changed: found {sorted(found)}")
    text = SUBPROJECT_BLOCK.sub("", text)
    text = map_get_variables(text, path)
    if "subproject(" in text or "_proj." in text:
        fail(f"{path}: leftover subproject reference")
    path.write_text(text)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    worker = Path(sys.argv[1])
    rewrite_top(worker / "meson.build")
    rewrite_libwebrtc(worker / "deps" / "libwebrtc" / "meson.build")


if __name__ == "__main__":
    main()
