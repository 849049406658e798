#!/bin/sh
# Fails if the linked image still has undefined symbols.
set -eu
undefined=$(nm -u "$1")
if [ -n "$undefined" ]; then
    echo "$1 has undefined symbols:" >&2
    echo "$undefined" >&2
    exit 1
fi
