"""moto's server, handling one request at a time.

moto applies a DynamoDB TransactWriteItems item by item and, when a condition fails, rolls
back by restoring a copy of the table taken when the transaction began. Two transactions
running at once can therefore undo each other's writes, which real DynamoDB never does.
Serialising requests makes moto as atomic as DynamoDB, so the concurrency tests test
Latchkey rather than moto. Usage: moto_server.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def one_at_a_time(environ, start_response):
    with lock:
        # The whole body is produced under the lock.
        return list(app(environ, start_response))


run_simple(host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)
