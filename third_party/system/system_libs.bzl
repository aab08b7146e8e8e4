"""Debian's system libraries as Bazel targets, through pkg-config.

Headers are already on the compiler's default search path (/usr/include), so each target carries
only link flags. The rule runs at repository-fetch time on the build machine; nothing is
downloaded. If a library is missing, the error says to run scripts/setup.sh.

Optimised builds (`-c opt`: what is deployed and benchmarked) link the libraries marked static
from Debian's static archives (`pkg-config --static`), so that a binary carries only the code it
uses and the dynamic loader does not resolve tens of thousands of symbols at start-up: the
agent's resident memory drops from 19 to about 14 MiB (docs/BUILDING.md). Other builds (tests, fuzzing)
link the shared libraries, which is faster, and so do -c opt builds with
--//third_party/system:link_shared (the .deb packages: :opt_shared there).
"""

# Linked from the shared library even in static builds: the C runtime's own libraries.
_ALWAYS_SHARED = ["dl", "m", "rt", "atomic", "pthread", "stdc++", "gcc_s"]

# target name -> (pkg-config modules, extra linkopts, static in -c opt builds)
_LIBS = {
    "absl": ([
        "absl_base",
        "absl_flags",
        "absl_flags_parse",
        "absl_flags_usage",
        "absl_hash",
        "absl_random_random",
        "absl_raw_hash_set",
        "absl_status",
        "absl_statusor",
        "absl_str_format",
        "absl_strings",
        "absl_synchronization",
        "absl_time",
    ], [], True),
    "crypto": (["libcrypto"], [], True),
    "grpc": (["grpc++", "protobuf"], ["-lgrpc++_reflection"], True),
    "gtest_main": (["gmock_main"], [], False),
    "microhttpd": (["libmicrohttpd"], [], False),
    "protobuf": (["protobuf"], [], True),
    "sqlite": (["sqlite3"], [], False),
}

def _pkg_config_flags(rctx, pkg_config, modules, extra, static):
    result = rctx.execute([pkg_config, "--libs"] + (["--static"] if static else []) + modules)
    if result.return_code != 0:
        fail("pkg-config cannot find %s (%s): run scripts/setup.sh" %
             (" ".join(modules), result.stderr.strip()))

    # Keep the order pkg-config gives (it is the link order), drop repeats.
    flags = []
    for flag in result.stdout.strip().split(" ") + extra:
        if flag and flag not in flags:
            flags.append(flag)
    return flags

def _static_linkopts(flags):
    """The -l flags from static archives, as one group; the C runtime's stay shared."""
    archives = []
    rest = []
    for flag in flags:
        if flag.startswith("-l") and flag[2:] not in _ALWAYS_SHARED:
            archives.append(flag)
        else:
            rest.append(flag)
    return (["-Wl,--start-group", "-Wl,-Bstatic"] + archives +
            ["-Wl,-Bdynamic", "-Wl,--end-group"] + rest)

def _system_libs_impl(rctx):
    pkg_config = rctx.which("pkg-config")
    if not pkg_config:
        fail("pkg-config not found: run scripts/setup.sh to install the build dependencies")
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, (modules, extra, static) in _LIBS.items():
        shared = _pkg_config_flags(rctx, pkg_config, modules, extra, False)
        build.append("cc_library(")
        build.append('    name = "%s",' % name)
        if static:
            linked = _static_linkopts(_pkg_config_flags(rctx, pkg_config, modules, extra, True))
            build.append("    linkopts = select({")
            build.append('        "@//third_party/system:opt_shared": %s,' % repr(shared))
            build.append('        "@//third_party/system:opt": %s,' % repr(linked))
            build.append('        "//conditions:default": %s,' % repr(shared))
            build.append("    }),")
        else:
            build.append("    linkopts = %s," % repr(shared))
        build.append(")")
        build.append("")
    rctx.file("BUILD", "\n".join(build))
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)

system_libs = repository_rule(
    implementation = _system_libs_impl,
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)
