#!/usr/bin/env bash
# How long the hand-written JSON parser and FoundationEssentials' JSONDecoder take for one
# `sample` line (16 connections), three rounds: the figure behind keeping the parser.
# usage: Benchmarks/json-parse.sh   (make bench-json)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /tmp/nbdtop-json-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
swiftc -O -parse-as-library -o "$out/json-parse" "$here/JSONParse/main.swift" \
  "$here/../Sources/Telemetry/JSONLines/JSONValue.swift" "$here/../Sources/Telemetry/JSONLines/JSONParser.swift"
for round in 1 2 3; do "$out/json-parse"; done
