"""DynamoDB tables: customer-managed encryption, point-in-time recovery, TTL where data expires."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from kanaria.names import table_name


@dataclass(frozen=True)
class TableSpec:
    """Key schema and TTL attribute of one table kind."""

    kind: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None


# Layouts (see docs/architecture.md):
#   experiments  experiment_id + record ("META" | "AUDIT#<iso-ts>#<version>")
#   assignments  pk "<experiment_id>#<unit>", expires_at TTL (7 days, sticky assignment)
#   aggregates   experiment_id + sk "<KIND>#<variant>#<intent>#<day>[#<shard>]" (exposures, sufficient statistics)
#   observations observation_id, expires_at TTL (raw, for audit/export)
#   rollouts     rollout_id + record ("META" | "ROLLBACK#<iso-ts>" | ...)
#   evaluations  config_hash + record ("EVAL#<iso-ts>#<dataset-version>" | "LATEST") offline evaluation results
#   idempotency  id, expiration TTL (Powertools Idempotency)
TABLE_SPECS: tuple[TableSpec, ...] = (
    TableSpec("experiments", "experiment_id", "record"),
    TableSpec("assignments", "pk", None, "expires_at"),
    TableSpec("aggregates", "experiment_id", "sk"),
    TableSpec("observations", "observation_id", None, "expires_at"),
    TableSpec("rollouts", "rollout_id", "record", "expires_at"),
    TableSpec("evaluations", "config_hash", "record"),
    TableSpec("idempotency", "id", None, "expiration"),
)


DATA_TABLES = frozenset({"experiments", "aggregates", "observations", "rollouts", "evaluations"})


class KanariaTables(Construct):
    """Every table Kanaria stores state in, keyed by kind."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.by_kind: dict[str, dynamodb.TableV2] = {
            spec.kind: self._build_table(spec, prefix, key) for spec in TABLE_SPECS
        }

    def _build_table(self, spec: TableSpec, prefix: str, key: kms.IKey) -> dynamodb.TableV2:
        return dynamodb.TableV2(
            self,
            spec.kind.capitalize(),
            table_name=table_name(prefix, spec.kind),
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING)
            if spec.sort_key
            else None,
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=spec.ttl_attribute,
            # Records and evidence (definitions, raw observations, counters, rollouts and rollbacks, evaluations)
            # survive a `cdk destroy` and cannot be deleted by a stray API call; assignments (sticky, 7-day TTL) and
            # idempotency records are rebuilt by the traffic itself.
            deletion_protection=spec.kind in DATA_TABLES,
            removal_policy=RemovalPolicy.RETAIN if spec.kind in DATA_TABLES else RemovalPolicy.DESTROY,
        )
