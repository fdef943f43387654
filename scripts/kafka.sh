#!/usr/bin/env bash
# Apache Kafka for the tests, from Maven Central (no tarball, no other host).
#
#   scripts/kafka.sh fetch     copy the broker's jars into .cache/kafka/<version>/libs (once)
#                              and print that folder
#   scripts/kafka.sh version   print the Kafka version tests/kafka/pom.xml names
#
# The tests start the broker themselves from those jars (tests/kafka/broker.py: KRaft,
# single node, `kafka-storage format` then the broker, on a free port).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pom="$root/tests/kafka/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
cache="${LEADFLOW_KAFKA_CACHE:-$root/.cache/kafka}/$version"

case "${1:-fetch}" in
version)
    echo "$version"
    ;;
fetch)
    # The stamp holds the pom's checksum: a change of the pom fetches again.
    sum="$(sha256sum "$pom" | cut -d' ' -f1)"
    if [[ ! -f "$cache/.fetched" || "$(cat "$cache/.fetched")" != "$sum" ]]; then
        command -v mvn >/dev/null || { echo "scripts/kafka.sh: needs Maven (mvn) and Java 17+" >&2; exit 1; }
        rm -rf "$cache/libs"
        mkdir -p "$cache"
        echo "scripts/kafka.sh: fetching Apache Kafka $version from Maven Central into $cache/libs" >&2
        if ! mvn --batch-mode --quiet -f "$pom" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$cache/libs" >"$cache/mvn.log" 2>&1; then
            cat "$cache/mvn.log" >&2
            exit 1
        fi
        echo "$sum" >"$cache/.fetched"
    fi
    echo "$cache/libs"
    ;;
*)
    echo "usage: scripts/kafka.sh [fetch|version]" >&2
    exit 2
    ;;
esac
