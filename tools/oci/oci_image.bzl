"""oci_image: an OCI image layout archive (oci-archive tar) built by Bazel, no container engine.

    load("//tools/oci:oci_image.bzl", "oci_image")

    oci_image(
        name = "image",                      # bazel-bin/image.tar
        binaries = {"//service:cdcjoind": "/usr/local/bin/cdcjoind"},
        files = {"//examples:nickname.textproto": "/etc/cdcjoin/config.textproto"},
        entrypoint = ["/usr/local/bin/cdcjoind", "--config=/etc/cdcjoin/config.textproto"],
    )

The binaries' shared libraries and the dynamic loader are resolved with ldd on the build host
(the host is the Debian release the image claims to be, so they match), which is why the action
runs unsandboxed. Labels org.opencontainers.image.version (from `version_header`'s kVersion) and
org.opencontainers.image.revision (STABLE_GIT_COMMIT from tools/workspace_status.sh) are set.
Load the result with `skopeo copy oci-archive:bazel-bin/image.tar docker-daemon:cdcjoin:TAG` or
`podman load -i bazel-bin/image.tar`.
"""

def _oci_image_impl(ctx):
    output = ctx.actions.declare_file(ctx.label.name + ".tar")
    args = ctx.actions.args()
    args.add(ctx.file._builder)
    args.add("--output", output)
    args.add("--version_header", ctx.file.version_header)
    args.add("--stable_status", ctx.info_file)
    args.add("--user", "%s=%d" % (ctx.attr.user, ctx.attr.uid))
    args.add("--entrypoint", json.encode(ctx.attr.entrypoint))
    args.add("--workdir", ctx.attr.workdir)
    inputs = [ctx.file._builder, ctx.file.version_header, ctx.info_file]
    for target, dest in ctx.attr.binaries.items():
        executable = target[DefaultInfo].files_to_run.executable
        inputs.append(executable)
        args.add("--binary", "%s=%s" % (executable.path, dest))
    for target, dest in ctx.attr.files.items():
        files = target.files.to_list()
        if len(files) != 1:
            fail("files: %s must be exactly one file" % target.label)
        inputs.append(files[0])
        args.add("--file", "%s=%s=0644" % (files[0].path, dest))
    args.add_all(ctx.attr.host_files, before_each = "--host_file")
    args.add_all(ctx.attr.host_libraries, before_each = "--host_library")
    args.add_all(["%s=%s" % (k, v) for k, v in sorted(ctx.attr.labels.items())], before_each = "--label")
    args.add_all(ctx.attr.exposed_ports, before_each = "--exposed_port")
    ctx.actions.run(
        # The system interpreter: the build host is Debian 12 with python3 (scripts/install_deps.sh).
        executable = "/usr/bin/python3",
        arguments = [args],
        inputs = inputs,
        outputs = [output],
        mnemonic = "OciImage",
        progress_message = "Assembling OCI image %s" % output.short_path,
        # ldd and the host files (CA bundle, libraries) live outside the sandbox.
        execution_requirements = {"no-sandbox": "1", "no-remote": "1"},
        env = {"PATH": "/usr/bin:/bin"},
    )
    return [DefaultInfo(files = depset([output]), runfiles = ctx.runfiles(files = [output]))]

oci_image = rule(
    implementation = _oci_image_impl,
    attrs = {
        "binaries": attr.label_keyed_string_dict(
            doc = "Executable -> absolute path in the image (mode 0755); ldd adds their libraries.",
            cfg = "target",
        ),
        "files": attr.label_keyed_string_dict(
            doc = "Single-file target -> absolute path in the image (mode 0644).",
            allow_files = True,
        ),
        "host_files": attr.string_list(
            doc = "Build-host files copied to the same path, e.g. the CA bundle.",
            default = ["/etc/ssl/certs/ca-certificates.crt"],
        ),
        "host_libraries": attr.string_list(
            doc = "Build-host shared objects the binaries dlopen() (plugins), with their libraries.",
        ),
        "entrypoint": attr.string_list(mandatory = True),
        "user": attr.string(default = "nonroot"),
        "uid": attr.int(default = 65532, doc = "uid and gid of `user`; the image runs as it."),
        "workdir": attr.string(default = "/"),
        "labels": attr.string_dict(doc = "Extra labels beside version and revision."),
        "exposed_ports": attr.string_list(doc = 'e.g. "50051/tcp".'),
        "version_header": attr.label(
            mandatory = True,
            allow_single_file = [".h"],
            doc = 'A header defining kVersion[] = "x.y.z": the version label and the tag.',
        ),
        "_builder": attr.label(
            default = "//tools/oci:build_oci.py",
            allow_single_file = True,
        ),
    },
    doc = "An OCI image layout archive (oci-archive tar) with the binaries and their libraries.",
)
