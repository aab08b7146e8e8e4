"""fuzz_test: one fuzz target, two ways to run it.

Normal builds (gcc): the target is linked with replay_main.cc and the test replays the committed
corpus, so every seed stays a regression test. With --config=fuzz (clang, libFuzzer, ASan, UBSan),
the same test runs libFuzzer for $FUZZ_SECONDS (default 60) starting from that corpus; any crash,
leak or sanitizer report fails it, and the reproducer lands in the test's undeclared outputs.
"""

def fuzz_test(name, srcs, deps, corpus):
    native.cc_binary(
        name = name + "_bin",
        testonly = True,
        srcs = srcs,
        deps = deps + select({
            "//tests/fuzz:fuzzing": [],
            "//conditions:default": ["//tests/fuzz:replay_main"],
        }),
        linkopts = select({
            "//tests/fuzz:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.sh_test(
        name = name,
        size = "medium",
        srcs = ["//tests/fuzz:run_fuzz_target.sh"],
        args = [
            "$(location :%s_bin)" % name,
            "tests/fuzz/corpus/" + corpus,
        ],
        data = [":%s_bin" % name] + native.glob(
            ["corpus/%s/*" % corpus],
            # A seed generator may live beside its seeds.
            exclude = ["corpus/%s/*.py" % corpus],
        ),
        tags = ["fuzz"],
    )
