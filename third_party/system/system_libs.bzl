"""Debian's system libraries as Bazel targets, through pkg-config.

Headers are already on the compiler's default search path (/usr/include), so each target carries
only link flags. The rule runs at repository-fetch time on the build machine; nothing is
downloaded. If a library is missing, the error says to run scripts/setup.sh.
"""

# target name -> (pkg-config modules, extra linkopts)
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
    ], []),
    "crypto": (["libcrypto"], []),
    "grpc": (["grpc++", "protobuf"], ["-lgrpc++_reflection"]),
    "gtest_main": (["gmock_main"], []),
    "microhttpd": (["libmicrohttpd"], []),
    "protobuf": (["protobuf"], []),
    "sqlite": (["sqlite3"], []),
}

def _system_libs_impl(rctx):
    pkg_config = rctx.which("pkg-config")
    if not pkg_config:
        fail("pkg-config not found: run scripts/setup.sh to install the build dependencies")
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, (modules, extra) in _LIBS.items():
        result = rctx.execute([pkg_config, "--libs"] + modules)
        if result.return_code != 0:
            fail("pkg-config cannot find %s (%s): run scripts/setup.sh" %
                 (" ".join(modules), result.stderr.strip()))

        # Keep the order pkg-config gives (it is the link order), drop repeats.
        flags = []
        for flag in result.stdout.strip().split(" ") + extra:
            if flag and flag not in flags:
                flags.append(flag)
        build.append("cc_library(")
        build.append('    name = "%s",' % name)
        build.append("    linkopts = %s," % repr(flags))
        build.append(")")
        build.append("")
    rctx.file("BUILD", "\n".join(build))
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)

system_libs = repository_rule(
    implementation = _system_libs_impl,
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)
