"""The project's C++ rules: one place for the warning flags every target is built with."""

WARNING_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
]

def cdcjoin_cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = WARNING_COPTS + copts, **kwargs)

def cdcjoin_cc_binary(name, copts = [], **kwargs):
    native.cc_binary(name = name, copts = WARNING_COPTS + copts, **kwargs)

def cdcjoin_cc_test(name, copts = [], deps = [], size = "small", **kwargs):
    native.cc_test(
        name = name,
        copts = WARNING_COPTS + copts,
        size = size,
        deps = deps + ["//third_party:gtest_main"],
        **kwargs
    )
