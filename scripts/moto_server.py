"""moto's server, handling one request at a time, with a cheap view of the mail SES sent.

moto applies a DynamoDB TransactWriteItems item by item and, when a condition fails, rolls
back by restoring a copy of the table taken when the transaction began. Two transactions
running at once can therefore undo each other's writes, which real DynamoDB never does.
Serialising requests makes moto as atomic as DynamoDB, so the concurrency tests test
Latchkey rather than moto.

`GET /latchkey/websocket-posts` answers what was posted to each WebSocket connection through
the API Gateway Management API (`PostToConnection`), which moto keeps but no API returns.

`GET /latchkey/request-counts` answers how many calls of each operation it has served
(`dynamodb:GetItem`, `ses:SendEmail`, ...; `dynamodb:TransactWriteItems/items` counts the items
of the transactions), which the Lambda benchmark turns into the cost of an operation.

`GET /latchkey/ses-messages` answers the messages SES "sent" (source, destinations, subject,
body), which moto otherwise only shows in `/moto-api/data.json`, a dump of every model of
every service that grows with every table the tests create. Usage: moto_server.py HOST PORT
"""

import io
import json
import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def sent_mail(start_response):
    from moto.ses.models import ses_backends

    messages = [
        {"source": m.source, "destinations": m.destinations, "subject": m.subject, "body": m.body}
        for account in list(ses_backends.keys())
        for region in list(ses_backends[account].keys())
        for m in ses_backends[account][region].sent_messages
    ]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(messages).encode()]


def websocket_posts(start_response):
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    posts = {
        connection_id: connection.data.decode()
        for account in list(apigatewaymanagementapi_backends.keys())
        for region in list(apigatewaymanagementapi_backends[account].keys())
        for connection_id, connection in apigatewaymanagementapi_backends[account][region].connections.items()
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(posts).encode()]


counts = {}


def count(environ):
    path = environ.get("PATH_INFO", "")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        service, _, operation = target.partition(".")
        name = f"{service.split('_')[0].lower()}:{operation}"
        if operation == "TransactWriteItems":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            items = len(json.loads(body or b"{}").get("TransactItems", []))
            counts[name + "/items"] = counts.get(name + "/items", 0) + items
    elif path.startswith("/v2/email/outbound-emails"):
        name = "ses:SendEmail"
    elif path.startswith("/v2/email/"):
        name = f"ses:{environ.get('REQUEST_METHOD')} {'/'.join(path.split('/')[:4])}"
    elif "/@connections/" in path:
        name = "execute-api:PostToConnection"
    elif path.startswith(("/moto-api", "/latchkey")):
        return
    else:
        name = f"s3:{environ.get('REQUEST_METHOD')}"
    counts[name] = counts.get(name, 0) + 1


def one_at_a_time(environ, start_response):
    with lock:
        if environ.get("PATH_INFO") == "/latchkey/request-counts":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(counts).encode()]
        count(environ)
        if environ.get("PATH_INFO") == "/latchkey/ses-messages":
            return sent_mail(start_response)
        if environ.get("PATH_INFO") == "/latchkey/websocket-posts":
            return websocket_posts(start_response)
        # The whole body is produced under the lock.
        return list(app(environ, start_response))


run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)
