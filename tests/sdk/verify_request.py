"""Checks a request the exporter sends with UCloud's official Python SDK.

Usage: verify_request.py PUBLIC_KEY PRIVATE_KEY

Listens on 127.0.0.1 (prints the port on the first line), takes one form-encoded POST, and
checks it as UCloud's SDK would have made it:
- the signature is the SDK's own `verify_ac` of the parameters;
- the parameters, folded back into the SDK's request shape, pass its request schema
  (QueryMetricDataSummaryRequestSchema: required fields and their types), and the SDK encodes
  that request into exactly the parameters received, no more and no fewer.
Answers RetCode 0 with no resources, then prints what it found as JSON and exits.
tests/monitor.rs runs it against the exporter's own client.
"""
import json
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

from ucloud.core.auth import Credential
from ucloud.core.typesystem import encoder
from ucloud.services.cloudwatch.schemas import apis

SCHEMAS = {"QueryMetricDataSummary": apis.QueryMetricDataSummaryRequestSchema}


def folded(params: dict) -> dict:
    """`Key.N` parameters back into lists, as the SDK's callers write them."""
    request, lists = {}, {}
    for key, value in params.items():
        match = re.fullmatch(r"(\w+)\.(\d+)", key)
        if match:
            lists.setdefault(match.group(1), {})[int(match.group(2))] = value
        else:
            request[key] = value
    for key, items in lists.items():
        request[key] = [items[i] for i in sorted(items)]
    return request


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        report = {"action": params.get("Action"), "params": sorted(params)}
        signature = params.pop("Signature", None)
        public_key = params.get("PublicKey")
        unsigned = {k: v for k, v in params.items() if k != "PublicKey"}
        expected = Credential(public_key, self.server.private_key).verify_ac(dict(unsigned))
        report["public_key_ok"] = public_key == self.server.public_key
        report["signature_ok"] = signature == expected
        request = folded({k: v for k, v in unsigned.items() if k != "Action"})
        try:
            dumped = SCHEMAS[params["Action"]]().dumps(request)
            sent = {k: v for k, v in unsigned.items() if k != "Action"}
            report["schema_ok"] = encoder.encode(dumped) == sent
            if not report["schema_ok"]:
                report["schema_error"] = "the SDK would send %r" % encoder.encode(dumped)
        except Exception as error:  # the SDK's validation error, whatever its class
            report["schema_ok"] = False
            report["schema_error"] = str(error)
        answer = json.dumps({"RetCode": 0, "Action": params.get("Action", "") + "Response",
                             "TotalCount": 0, "Data": {"Total": 0, "List": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.server.report = report

    def log_message(self, *args):
        pass


def main() -> None:
    public_key, private_key = sys.argv[1:3]
    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.public_key, server.private_key, server.report = public_key, private_key, None
    print(server.server_address[1], flush=True)
    server.timeout = 30
    server.handle_request()
    json.dump(server.report, sys.stdout)


if __name__ == "__main__":
    main()
