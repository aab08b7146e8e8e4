"""link_shared: a boolean build setting (bazel_skylib's bool_flag, which is not installed here)."""

def _bool_setting_impl(ctx):
    return []

bool_setting = rule(
    implementation = _bool_setting_impl,
    build_setting = config.bool(flag = True),
    doc = "A boolean build setting: --//third_party/system:NAME=true, or a transition.",
)
