#!/usr/bin/python3
"""Validates deploy/ (kubectl is not available): parses the YAML and checks that the Pod, the
ConfigMap, the image and cdcjoind agree with each other.

    deploy_test.py POD_YAML CONFIGMAP_YAML IMAGE_TAR CDCJOIND

- the Pod runs the containers `app` and `cdcjoind`, the latter from the cdcjoin image tag;
- the ConfigMap's config.textproto is mounted exactly at the path the image's entrypoint reads,
  and cdcjoind --check_config accepts it;
- the admin port off loopback speaks TLS from a mounted Secret; the readiness probe is gRPC on
  the config's plaintext health-only port (the kubelet's probe cannot speak TLS), the liveness
  probe on a declared port, every port is declared;
- kafka.group_instance_id_env, when set, names the pod's own name (downward API);
- secrets reach cdcjoind only from the Secret: the env variable the config's password_env names,
  the file its admin.token_file names; the config holds no secret;
- non-root as the image's user, resources, and a grace period longer than the shutdown timeout.
"""

import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

import yaml

errors = []


def check(ok, message):
    if not ok:
        errors.append(message)
    return ok


def image_config(image_tar):
    """The OCI config of the archive's one image, read straight from the layout."""
    with tarfile.open(image_tar) as tar:
        def blob(digest):
            return json.load(tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1]))
        index = json.load(tar.extractfile("index.json"))
        manifest = blob(index["manifests"][0]["digest"])
        return blob(manifest["config"]["digest"]), index


def main():
    pod_path, configmap_path, image_tar, cdcjoind = sys.argv[1:5]
    with open(pod_path) as f:
        pod = yaml.safe_load(f)
    with open(configmap_path) as f:
        configmap = yaml.safe_load(f)
    config, index = image_config(image_tar)
    image_version = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    entrypoint = config["config"]["Entrypoint"]
    image_uid = int(config["config"]["User"].split(":")[0])
    config_flag = [a for a in entrypoint if a.startswith("--config=")]
    check(len(config_flag) == 1, "entrypoint has no --config: %r" % entrypoint)
    config_path = config_flag[0].split("=", 1)[1]

    check(pod["apiVersion"] == "v1" and pod["kind"] == "Pod", "pod.yaml is not a v1 Pod")
    check(configmap["kind"] == "ConfigMap", "configmap.yaml is not a ConfigMap")
    spec = pod["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    check(set(containers) == {"app", "cdcjoind"}, "containers %r" % sorted(containers))
    sidecar = containers["cdcjoind"]
    check(sidecar["image"].endswith("/cdcjoin:" + image_version),
          "cdcjoind image %r is not cdcjoin:%s" % (sidecar["image"], image_version))

    # The config map key, mounted at the entrypoint's path.
    text = configmap["data"].get("config.textproto")
    check(text is not None, "ConfigMap has no config.textproto")
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounted = {}
    for mount in sidecar["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            check(volume["configMap"]["name"] == configmap["metadata"]["name"],
                  "volume %s names ConfigMap %r" % (mount["name"], volume["configMap"]["name"]))
            for item in volume["configMap"].get("items", []):
                mounted[os.path.join(mount["mountPath"], item["path"])] = item["key"]
    check(mounted.get(config_path) == "config.textproto",
          "%s (the entrypoint's config) is not the ConfigMap key config.textproto: %r" %
          (config_path, mounted))

    # The admin port of the config, behind the probes.
    admin = re.search(r'admin\s*{[^}]*listen_address:\s*"([^"]+)"', text)
    check(admin is not None, "the config sets no admin.listen_address")
    admin_port = int(admin.group(1).rsplit(":", 1)[1]) if admin else None
    check(admin and not admin.group(1).startswith("127."),
          "admin.listen_address %r is loopback: the kubelet's probe cannot reach it" %
          (admin.group(1) if admin else None))
    ports = {p["containerPort"] for p in sidecar.get("ports", [])}
    health = re.search(r'health_listen_address:\s*"([^"]+)"', text)
    check(health is not None, "the config sets no admin.health_listen_address: with TLS on the "
          "admin port, the kubelet's gRPC probe has nothing it can speak to")
    health_port = int(health.group(1).rsplit(":", 1)[1]) if health else None
    check(health_port in ports, "health port %r not declared in ports" % health_port)
    readiness = sidecar.get("readinessProbe", {})
    check(readiness.get("grpc", {}).get("port") == health_port,
          "readinessProbe.grpc.port %r != health port %r" %
          (readiness.get("grpc", {}).get("port"), health_port))
    liveness = sidecar.get("livenessProbe", {})
    live_port = next((v.get("port") for k, v in liveness.items()
                      if k in ("grpc", "tcpSocket", "httpGet")), None)
    check(live_port in ports, "livenessProbe port %r is not a declared port" % live_port)
    check(admin_port in ports, "admin port %r not declared in ports" % admin_port)
    metrics = re.search(r'metrics\s*{[^}]*listen_address:\s*"([^"]+)"', text)
    if check(metrics is not None, "the config sets no metrics.listen_address (loopback default: "
             "Prometheus could not scrape it)"):
        metrics_port = int(metrics.group(1).rsplit(":", 1)[1])
        check(metrics_port in ports, "metrics port %d not declared in ports" % metrics_port)
        annotations = pod["metadata"].get("annotations", {})
        check(annotations.get("prometheus.io/port") == str(metrics_port),
              "prometheus.io/port annotation %r != metrics port %d" %
              (annotations.get("prometheus.io/port"), metrics_port))

    # Secrets: from the Secret only, where the config looks for them; none in the config.
    check(not re.search(r"^\s*password\s*:", text, re.M), "the config holds a password")
    password_env = re.search(r'password_env:\s*"([^"]+)"', text)
    check(password_env is not None, "the config sets no password_env")
    env = {e["name"]: e for e in sidecar.get("env", [])}
    if password_env:
        entry = env.get(password_env.group(1), {})
        check("secretKeyRef" in entry.get("valueFrom", {}),
              "$%s is not from a Secret" % password_env.group(1))
    # Static membership: the instance id the config reads is the pod's own name.
    instance_env = re.search(r'group_instance_id_env:\s*"([^"]+)"', text)
    if instance_env:
        field = env.get(instance_env.group(1), {}).get("valueFrom", {}).get("fieldRef", {})
        check(field.get("fieldPath") == "metadata.name",
              "$%s (kafka.group_instance_id_env) is not the pod's name" % instance_env.group(1))
    token_file = re.search(r'token_file:\s*"([^"]+)"', text)
    tls_files = {}
    if check(token_file is not None, "the config sets no admin.token_file"):
        secret_files = {}
        for mount in sidecar["volumeMounts"]:
            volume = volumes[mount["name"]]
            if "secret" in volume:
                for item in volume["secret"].get("items", []):
                    secret_files[os.path.join(mount["mountPath"], item["path"])] = item["key"]
        check(token_file.group(1) in secret_files,
              "admin.token_file %s is not a mounted Secret item: %r" %
              (token_file.group(1), secret_files))
        tls_files = {name: re.search(name + r':\s*"([^"]+)"', text)
                     for name in ("cert_file", "key_file")}
        for name, found in tls_files.items():
            if check(found is not None, "the config sets no admin.tls.%s" % name):
                check(found.group(1) in secret_files,
                      "admin.tls.%s %s is not a mounted Secret item: %r" %
                      (name, found.group(1), secret_files))
    state_dir = re.search(r'state_dir:\s*"([^"]+)"', text)
    if state_dir:
        check(any(state_dir.group(1).startswith(m["mountPath"] + "/") and
                  not m.get("readOnly", False) for m in sidecar["volumeMounts"]),
              "window.state_dir %s is not on a writable volume" % state_dir.group(1))

    # Security and resources.
    pod_security = spec.get("securityContext", {})
    check(pod_security.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot")
    check(pod_security.get("runAsUser") == image_uid,
          "runAsUser %r != the image's uid %d" % (pod_security.get("runAsUser"), image_uid))
    container_security = sidecar.get("securityContext", {})
    check(container_security.get("allowPrivilegeEscalation") is False,
          "cdcjoind allowPrivilegeEscalation")
    check(container_security.get("readOnlyRootFilesystem") is True, "cdcjoind readOnlyRootFilesystem")
    for kind in ("requests", "limits"):
        check("memory" in sidecar.get("resources", {}).get(kind, {}),
              "cdcjoind resources.%s.memory" % kind)
    shutdown = [a for a in sidecar.get("args", []) if a.startswith("--shutdown_timeout_ms=")]
    shutdown_ms = int(shutdown[0].split("=")[1]) if shutdown else 30000
    check(spec.get("terminationGracePeriodSeconds", 30) * 1000 > shutdown_ms,
          "terminationGracePeriodSeconds does not cover --shutdown_timeout_ms=%d" % shutdown_ms)

    # cdcjoind itself accepts the ConfigMap's config, with the secrets supplied as in the Pod
    # (the token file at a temporary path instead of the Secret's mount).
    with tempfile.TemporaryDirectory() as scratch:
        run_text = text
        if token_file:
            token_path = os.path.join(scratch, "admin-token")
            with open(token_path, "w") as f:
                f.write("not-a-real-token\n")
            run_text = run_text.replace(token_file.group(1), token_path)
            # A throwaway certificate where the Secret's would be.
            cert_path = os.path.join(scratch, "tls.crt")
            key_path = os.path.join(scratch, "tls.key")
            subprocess.run(["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-days", "1", "-subj", "/CN=cdcjoin-test", "-keyout", key_path,
                            "-out", cert_path], check=True, capture_output=True)
            for name, path in (("cert_file", cert_path), ("key_file", key_path)):
                if tls_files.get(name):
                    run_text = run_text.replace(tls_files[name].group(1), path)
        config_file = os.path.join(scratch, "config.textproto")
        with open(config_file, "w") as f:
            f.write(run_text)
        run_env = {"PATH": "/usr/bin:/bin"}
        if password_env:
            run_env[password_env.group(1)] = "not-a-real-password"
        result = subprocess.run([cdcjoind, "--config=" + config_file, "--check_config"],
                                env=run_env, capture_output=True, text=True)
    check(result.returncode == 0, "cdcjoind --check_config rejects the ConfigMap's config: %s" %
          result.stderr.strip())
    output = result.stdout + result.stderr
    check("not-a-real-password" not in output and "not-a-real-token" not in output,
          "cdcjoind --check_config printed a secret")

    if errors:
        print("FAIL:\n  " + "\n  ".join(errors))
        sys.exit(1)
    print("PASS: pod %s, containers %s, config at %s, admin port %d" %
          (pod["metadata"]["name"], sorted(containers), config_path, admin_port))


if __name__ == "__main__":
    main()
