"""Re-exports Bazel's native Java rules so the built-in WORKSPACE suffix resolves offline."""
java_binary = native.java_binary
java_import = native.java_import
java_library = native.java_library
java_test = native.java_test
java_plugin = native.java_plugin
java_toolchain = native.java_toolchain
java_runtime = native.java_runtime
