#!/bin/sh
# Bazel's --workspace_status_command (see .bazelrc): key/value pairs stamped into the image
# labels. STABLE_ keys land in stable-status.txt, so a new commit rebuilds what reads them.
# Without a .git (a source tarball) the revision is "unknown" rather than a failed build.
revision=$(git rev-parse HEAD 2>/dev/null) || revision=unknown
echo "STABLE_GIT_COMMIT ${revision}"
