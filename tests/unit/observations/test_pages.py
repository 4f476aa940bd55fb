"""kanaria.dal.pages: every item of a Query/Scan over all pages (boto3's paginator), in the resource's types."""

from __future__ import annotations

from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Attr, Key
from moto import mock_aws

from kanaria.dal.pages import query_items, scan_items


def test_all_pages_are_read_with_conditions_and_python_values() -> None:
    with mock_aws():
        table = boto3.resource("dynamodb", region_name="ap-northeast-1").create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        for i in range(7):
            table.put_item(Item={"pk": "exp", "sk": f"AUDIT#{i}", "n": Decimal(i)})
        table.put_item(Item={"pk": "exp", "sk": "META", "n": Decimal(99)})
        calls: list[str] = []
        table.meta.client.meta.events.register("after-call.dynamodb", lambda **kw: calls.append(kw["model"].name))

        items = query_items(
            table,
            KeyConditionExpression=Key("pk").eq("exp") & Key("sk").begins_with("AUDIT#"),
            PaginationConfig={"PageSize": 3},
        )
        assert [i["n"] for i in items] == [Decimal(i) for i in range(7)]
        assert calls == ["Query"] * 3  # 3 + 3 + 1: every page followed

        big = scan_items(table, FilterExpression=Attr("n").gte(5), PaginationConfig={"PageSize": 2})
        assert sorted(i["sk"] for i in big) == ["AUDIT#5", "AUDIT#6", "META"]
