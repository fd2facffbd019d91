"""UCloud's official Python SDK asks a gateway for a series of UDTS's monitoring numbers.

Usage: cloudwatch_data_set.py ENDPOINT PUBLIC_KEY PRIVATE_KEY PRODUCT METRIC MINUTES TASK_ID...

Signs and sends QueryMetricDataSet as the SDK does, one (METRIC, TASK_ID) pair per task over the
last MINUTES minutes at a 60 s period, loads the answer through the SDK's own response schema
(which raises on a RetCode other than 0 or a shape it cannot load), and prints what it loaded
as JSON. tests/monitor.rs runs it against the simulated gateway.
"""
import json
import logging
import sys
import time

from ucloud.client import Client


def main() -> None:
    endpoint, public_key, private_key, product, metric, minutes, *task_ids = sys.argv[1:]
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
    end = int(time.time())
    answer = client.cloudwatch().query_metric_data_set(
        {
            "ProductKey": product,
            "CalcMethod": "raw",
            "Period": 60,
            "StartTime": end - 60 * int(minutes),
            "EndTime": end,
            "MetricInfos": [{"Metric": metric, "ResourceId": task} for task in task_ids],
        }
    )
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
