#!/usr/bin/env bash
# Fails when docs/configuration.md is not what tools/gen_config_doc.py makes of config.proto now.
#   configuration_doc_test.sh GEN_CONFIG_DOC CONFIG_PROTO CONFIGURATION_MD
set -euo pipefail
generated=${TEST_TMPDIR:-/tmp}/configuration.md
/usr/bin/python3 "$1" "$2" >"$generated"
if ! diff -u "$3" "$generated"; then
  echo "FAIL: docs/configuration.md is out of date with proto/cdcjoin/v1/config.proto; run" >&2
  echo "  tools/gen_config_doc.py proto/cdcjoin/v1/config.proto > docs/configuration.md" >&2
  exit 1
fi
echo "PASS: docs/configuration.md matches config.proto"
