"""opt_binary: a binary built with -c opt whatever the command line says.

The packages must carry optimised binaries, and the packaging tests must test
what ships: `bazel test //tests/deploy/packaging/...` and `bazel build //:packages`
(scripts/package.sh) package the same -c opt binaries, built once. An
incoming transition sets compilation_mode to opt for the binary and
everything it depends on.

shared_libs = True sets --//third_party/system:link_shared: the binary is linked
against Debian's shared libraries (//third_party/system:opt_shared; the .deb
packages) instead of the static archives that -c opt otherwise uses for gRPC,
Protobuf, Abseil and OpenSSL, and compiled with _FORTIFY_SOURCE=2 as Debian's
own packages are. That is a configuration of its own, so its
objects are compiled once more; without it, under -c opt the transition
changes nothing and nothing is built twice.
"""

_LINK_SHARED = "//third_party/system:link_shared"

# Debian's hardening level (dpkg-buildflags): Bazel's toolchain defines _FORTIFY_SOURCE=1.
_FORTIFY_2 = ["-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=2"]

def _to_opt_impl(settings, attr):
    copts = [c for c in settings["//command_line_option:copt"] if c not in _FORTIFY_2]
    if attr.shared_libs:
        copts += _FORTIFY_2
    return {
        "//command_line_option:compilation_mode": "opt",
        "//command_line_option:copt": copts,
        _LINK_SHARED: attr.shared_libs,
    }

_to_opt = transition(
    implementation = _to_opt_impl,
    inputs = ["//command_line_option:copt"],
    outputs = [
        "//command_line_option:compilation_mode",
        "//command_line_option:copt",
        _LINK_SHARED,
    ],
)

def _opt_binary_impl(ctx):
    binary = ctx.attr.binary[0][DefaultInfo].files_to_run.executable
    out = ctx.actions.declare_file(ctx.attr.out)
    ctx.actions.symlink(output = out, target_file = binary, is_executable = True)
    return [DefaultInfo(files = depset([out]))]

opt_binary = rule(
    implementation = _opt_binary_impl,
    doc = "The executable of `binary`, built with -c opt, as the file `out`.",
    attrs = {
        "binary": attr.label(cfg = _to_opt, mandatory = True),
        "out": attr.string(mandatory = True),
        "shared_libs": attr.bool(default = False),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
