#!/usr/bin/env bash
# Usage: scripts/kafka-crash-test.sh [MIN_KILLS] [SEED]
# SIGKILLs `lambdaflow run` reading Kafka at random moments (at least MIN_KILLS, default 20) while
# a publisher is producing, restarts it each time, and checks that the lake holds every event
# exactly once and that the consumer group's offsets equal the lake's (scripts/kafka_crash_test.py).
#
# The broker is librdkafka's mock cluster in a process of its own (examples/mock_kafka.rs), or
# with LAMBDAFLOW_BROKER=tansu the real broker of scripts/kafka-broker.sh (built once, ~10 min).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
# The same build as the tests (one feature set, so dependencies compile once).
scripts/build.sh
work=target/kafka-crash-test
rm -rf "$work"
mkdir -p "$work"
topic=crash-$$
case ${LAMBDAFLOW_BROKER:-mock} in
mock)
    # The mock lives as long as its standard input stays open.
    mkfifo "$work/hold"
    # The mock keeps 5 MB per partition: 8 partitions keep all 80,000 events.
    target/debug/examples/mock_kafka "$topic" 8 <"$work/hold" >"$work/bootstrap" 2>"$work/mock.log" &
    mock=$!
    exec 3>"$work/hold"
    trap 'exec 3>&-; wait $mock 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do [[ -s $work/bootstrap ]] && break; sleep 0.1; done
    bootstrap=$(head -1 "$work/bootstrap")
    ;;
tansu)
    scripts/kafka-broker.sh start
    scripts/kafka-broker.sh topic "$topic" 8
    bootstrap=127.0.0.1:$(cat target/kafka/port)
    ;;
*)
    echo "LAMBDAFLOW_BROKER must be mock or tansu" >&2
    exit 2
    ;;
esac
"$py" scripts/kafka_crash_test.py target/debug/lambdaflow "$work/run" "$bootstrap" "$topic" "$@"
