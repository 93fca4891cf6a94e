#!/bin/sh
# Creates (or re-configures) auditline's topics and ACLs on a production Kafka cluster with the Kafka CLI.
# `auditline init` creates the same topics with the same retention; this script is for operators who create
# topics themselves (auto.create.topics.enable=false, no topic-create right for auditline) and adds the ACLs.
# Usage: BOOTSTRAP=kafka-0:9093 CONFIG=admin.properties PREFIX= sh deploy/kafka/topics.sh
# admin.properties: security.protocol=SASL_SSL, sasl.mechanism=SCRAM-SHA-512, sasl.jaas.config=..., ssl.truststore.*
set -eu
BOOTSTRAP=${BOOTSTRAP:?set BOOTSTRAP=host:port}
CONFIG=${CONFIG:?set CONFIG=admin client properties file}
PREFIX=${PREFIX:-}
KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}
DAY=86400000

topic() { # name partitions retention.ms [extra --config k=v ...]
  name="$PREFIX$1"; partitions=$2; retention=$3; shift 3
  set -- --config "retention.ms=$retention" --config min.insync.replicas=2 --config unclean.leader.election.enable=false "$@"
  if "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --describe --topic "$name" >/dev/null 2>&1; then
    configs=$(printf '%s\n' "$@" | grep -v '^--config$' | paste -sd, -)
    "$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --alter --entity-type topics --entity-name "$name" --add-config "$configs"
  else
    "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --create --topic "$name" \
      --partitions "$partitions" --replication-factor 3 "$@"
  fi
}

# Audit topics: a week, so that any stage can be replayed (Elasticsearch holds the legal retention).
topic audit.sshd.v1 3 $((7 * DAY))
topic audit.ftp.v1 3 $((7 * DAY))
topic audit.db.v1 3 $((7 * DAY))
topic audit.panel.v1 3 $((7 * DAY))
topic audit.api.v1 1 $((7 * DAY))
# RESTRICTED: raw visitor IPs, at most an hour; 10-minute segments so that retention can delete them on time.
topic web.access.raw.v1 3 3600000 --config segment.ms=600000
topic web.access.anon.v1 3 $((7 * DAY))
topic stats.web.v1 3 $((7 * DAY))
topic audit.deadletter.v1 1 $((30 * DAY))

acl() { "$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --add --force "$@"; }
# One SCRAM user per stage (kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=...]' --entity-type users --entity-name <user>).
for t in audit.sshd.v1 audit.ftp.v1 audit.db.v1 web.access.raw.v1 audit.deadletter.v1; do
  acl --allow-principal User:auditline-collector --producer --idempotent --topic "$PREFIX$t"
done
acl --allow-principal User:auditline-panel --producer --idempotent --topic "${PREFIX}audit.panel.v1"
acl --allow-principal User:auditline-panel --producer --idempotent --topic "${PREFIX}audit.deadletter.v1"
# Only the anonymizer may read raw visitor IPs.
acl --allow-principal User:auditline-anonymizer --consumer --topic "${PREFIX}web.access.raw.v1" --group auditline-anonymizer
for t in web.access.anon.v1 audit.deadletter.v1; do
  acl --allow-principal User:auditline-anonymizer --producer --idempotent --topic "$PREFIX$t"
done
acl --allow-principal User:auditline-stats --consumer --topic "${PREFIX}web.access.anon.v1" --group auditline-stats
for t in stats.web.v1 audit.deadletter.v1; do
  acl --allow-principal User:auditline-stats --producer --idempotent --topic "$PREFIX$t"
done
for t in audit.sshd.v1 audit.ftp.v1 audit.db.v1 audit.panel.v1 audit.api.v1 stats.web.v1; do
  acl --allow-principal User:auditline-indexer --consumer --topic "$PREFIX$t" --group auditline-indexer
done
for t in audit.deadletter.v1 audit.api.v1; do
  acl --allow-principal User:auditline-indexer --producer --idempotent --topic "$PREFIX$t"
done
acl --allow-principal User:auditline-query-api --producer --idempotent --topic "${PREFIX}audit.api.v1"
# auditline verify --dead-letters reads the dead-letter topic.
acl --allow-principal User:auditline-auditor --operation Read --operation Describe --topic "${PREFIX}audit.deadletter.v1"
# Its throw-away groups are named auditline-verify-<random> (and deleted afterwards).
acl --allow-principal User:auditline-auditor --operation Read --operation Delete --group auditline-verify- --resource-pattern-type prefixed
echo "topics and ACLs applied"
