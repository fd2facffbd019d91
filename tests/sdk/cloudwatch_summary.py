"""UCloud's official Python SDK asks a gateway for UDTS's monitoring numbers.

Usage: cloudwatch_summary.py ENDPOINT PUBLIC_KEY PRIVATE_KEY PRODUCT TASK_ID...

Signs and sends QueryMetricDataSummary as the SDK does, loads the answer through the SDK's own
response schema (which raises on a RetCode other than 0 or a shape it cannot load), and prints
what it loaded as JSON. tests/monitor.rs runs it against the simulated gateway.
"""
import json
import logging
import sys

from ucloud.client import Client


def main() -> None:
    endpoint, public_key, private_key, product, *task_ids = sys.argv[1:]
    client = Client(
        {
            "region": "cn-bj2",
            "project_id": "org-test",
            "public_key": public_key,
            "private_key": private_key,
            "base_url": endpoint,
            "log_level": logging.WARNING,
        }
    )
    answer = client.cloudwatch().query_metric_data_summary(
        {
            "ProductKey": product,
            "Limit": 100,
            "Offset": 0,
            "ResourceIds": task_ids,
            "Metrics": ["%s_sync_syncing_delay_time" % product],
        }
    )
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
