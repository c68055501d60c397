"""Re-exports Bazel's native proto rules so the built-in WORKSPACE suffix resolves offline."""
proto_library = native.proto_library
proto_lang_toolchain = native.proto_lang_toolchain
