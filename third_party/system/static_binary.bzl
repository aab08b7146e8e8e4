"""static_binary: a cc_binary linked again, fully static (no PT_INTERP, no DT_NEEDED).

    static_binary(name = "ntpfleet-agent-static", binary = ":ntpfleet-agent")

links the very objects the cc_binary `binary` links (its own compiled sources and every library
it depends on, as compiled for the dynamic binary: nothing is compiled twice), but takes the
system libraries (@system//...) from Debian's static archives, the C and C++ runtimes included
(`gcc -static`, `pkg-config --static`), instead of from the flags the dynamic build uses. The
result needs no shared library and no particular glibc on the host: the release tarball and the
RPMs for CentOS 7 ship these (#12). glibc 2.36 itself runs on kernels from 3.2 on; the system calls
newer than CentOS 7's 3.10 that the programs make (clone3, rseq, getrandom) all have fallbacks,
which tests/static checks by running them with those calls refused. Without getrandom, OpenSSL
and Abseil read /dev/urandom, so a chroot or container must have it.

glibc's static archive still carries functions that load the host's shared NSS modules or other
shared objects at run time (getaddrinfo, getpwnam, getservbyname, dlopen, ...; the linker warns
"Using 'X' in statically linked applications requires at runtime the shared libraries from the
glibc version used for linking"). A static binary must not use them: on CentOS 7 they would load
glibc 2.17's modules into this glibc 2.36 program. Every static_binary therefore links
//third_party/system:static_libc, which defines those functions without NSS or the dynamic loader
(see static_libc.cc), and the link fails on any such warning that remains (`--fatal-warnings`).

Static binaries are linked only when asked for (tag them "manual"): sanitizer runtimes cannot be
linked statically, so `--config=asan` builds must not reach them.
"""

load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")
load("@system//:static_flags.bzl", "STATIC_LINKOPTS")

_BinaryParts = provider(
    doc = "What a cc_binary links: its compiled sources, its deps' CcInfo, its linkopts.",
    fields = ["objects", "cc_infos", "linkopts"],
)

def _binary_parts_impl(target, ctx):
    # The binary's own objects exactly as its link action takes them (-c opt: plain, fastbuild:
    # PIC); the compilation_outputs group would offer PIC ones in -c opt, compiled once more.
    own = "/_objs/%s/" % ctx.rule.attr.name
    objects = []
    for action in target.actions:
        if action.mnemonic == "CppLink":
            objects = [f for f in action.inputs.to_list() if own in f.path and f.extension == "o"]
    if not objects:
        fail("no objects of %s found in its link action" % target.label)
    return [_BinaryParts(
        objects = depset(objects),
        cc_infos = [dep[CcInfo] for dep in ctx.rule.attr.deps if CcInfo in dep],
        linkopts = ctx.rule.attr.linkopts,
    )]

_binary_parts = aspect(implementation = _binary_parts_impl)

def _is_system(owner):
    return owner.workspace_name == "system"

def _static_binary_impl(ctx):
    parts = ctx.attr.binary[_BinaryParts]
    cc_toolchain = find_cpp_toolchain(ctx)
    feature_configuration = cc_common.configure_features(
        ctx = ctx,
        cc_toolchain = cc_toolchain,
        requested_features = ctx.features,
        unsupported_features = ctx.disabled_features,
    )

    # The system libraries the binary uses, by name (@system//:NAME); their flags are dropped below.
    cc_infos = parts.cc_infos + [ctx.attr._static_libc[CcInfo]]
    system = []
    for cc_info in cc_infos:
        for linker_input in cc_info.linking_context.linker_inputs.to_list():
            name = linker_input.owner.name
            if _is_system(linker_input.owner) and name not in system:
                system.append(name)
    if "microhttpd" in system:
        cc_infos.append(ctx.attr._microhttpd_without_tls[CcInfo])

    # Our libraries as they are, in their link order.
    ours = [
        linker_input
        for linker_input in cc_common.merge_cc_infos(cc_infos = cc_infos).linking_context.linker_inputs.to_list()
        if not _is_system(linker_input.owner)
    ]
    static_flags = []
    for name in system:
        if name not in STATIC_LINKOPTS:
            fail("@system//:%s has no static flags (third_party/system/system_libs.bzl)" % name)
        static_flags += STATIC_LINKOPTS[name]

    objects = parts.objects.to_list()
    linking_outputs = cc_common.link(
        actions = ctx.actions,
        name = ctx.label.name,
        feature_configuration = feature_configuration,
        cc_toolchain = cc_toolchain,
        # The same files both ways, so that whichever cc_common.link takes, main() is in.
        compilation_outputs = cc_common.create_compilation_outputs(
            objects = depset(objects),
            pic_objects = depset(objects),
        ),
        linking_contexts = [cc_common.create_linking_context(
            linker_inputs = depset(ours, order = "topological"),
        )],
        user_link_flags = parts.linkopts + [
            "-static",
            # Stripped: what is shipped (lintian, rpmlint and the tarball want no symbol tables).
        ] + ([] if ctx.attr.debug_symbols else ["-s"]) + [
            # A library's static registrations and their dependencies resolve in any order.
            "-Wl,--start-group",
        ] + static_flags + [
            "-Wl,--end-group",
            # Any "Using 'X' in statically linked applications requires at runtime the shared
            # libraries ..." left is an error, not a line in the build log.
            "-Wl,--fatal-warnings",
        ],
        output_type = "executable",
        link_deps_statically = True,
    )
    executable = linking_outputs.executable
    return [DefaultInfo(
        files = depset([executable]),
        executable = executable,
    )]

static_binary = rule(
    implementation = _static_binary_impl,
    attrs = {
        "binary": attr.label(
            doc = "The cc_binary to link statically.",
            mandatory = True,
            aspects = [_binary_parts],
        ),
        "debug_symbols": attr.bool(
            doc = "Keep the symbol table (to see with nm what was linked); shipped ones are stripped.",
            default = False,
        ),
        "_static_libc": attr.label(default = "//third_party/system:static_libc"),
        "_microhttpd_without_tls": attr.label(
            default = "//third_party/system:microhttpd_without_tls",
        ),
        "_cc_toolchain": attr.label(default = "@bazel_tools//tools/cpp:current_cc_toolchain"),
    },
    executable = True,
    fragments = ["cpp"],
    toolchains = ["@bazel_tools//tools/cpp:toolchain_type"],
    incompatible_use_toolchain_transition = True,
)
