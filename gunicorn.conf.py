"""gunicorn settings for fba-backend: `gunicorn -c gunicorn.conf.py 'app:create_app()'`.

Workers: gunicorn's own WEB_CONCURRENCY (default 1), each with GUNICORN_THREADS threads.
Workers share one rate limiter through RATE_LIMIT_BACKEND (sqlite by default, or redis), so
more workers never send more than the SP-API plan; with RATE_LIMIT_BACKEND=memory keep one.

With no SP-API credentials and no SP_API_ENDPOINT, the master starts the bundled
emulator (on EMULATOR_PORT) and points the workers at it.
"""

import os
import signal
import socket
import sys

from config import ConfigError, load_settings
from utils import metrics

try:
    _settings = load_settings()
except ConfigError as exc:
    # One clear line, no traceback: the service does not start on a bad value.
    print(f"fba-backend: configuration error: {exc}", file=sys.stderr)
    sys.exit(2)

if _settings.web_concurrency > 1 and _settings.rate_limit_backend == "memory":
    print(
        f"fba-backend: warning: RATE_LIMIT_BACKEND=memory with WEB_CONCURRENCY={_settings.web_concurrency}: "
        "each worker paces alone and together they can exceed the SP-API plan; use sqlite or redis",
        file=sys.stderr,
    )

bind = f"{_settings.host}:{_settings.port}"
# gthread, answering gunicorn's own errors (bad request line, URI or headers too large) in the
# service's JSON error shape, and reading a body the app left unread before the connection closes.
worker_class = "gunicorn_worker.JsonErrorWorker"
workers = _settings.web_concurrency
threads = _settings.gunicorn_threads
# A batch can wait on the SP-API plan: give requests time before gunicorn kills a worker.
timeout = 120
graceful_timeout = 30
accesslog = "-"
# gunicorn's control socket lives at one per-user path: two services (or a test run beside
# a running one) would fight over it. Nothing here uses it.
control_socket_disable = True
loglevel = _settings.log_level.lower()

_emulator = None


def _free_port(preferred: int, host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        try:
            probe.bind((host, preferred))
            return preferred
        except OSError:
            probe.bind((host, 0))
            return probe.getsockname()[1]


def on_starting(server):
    """Give the workers one metrics directory; start the bundled SP-API emulator when there is nothing else to call."""
    global _emulator
    try:
        # Before any worker forks: workers inherit PROMETHEUS_MULTIPROC_DIR, and /metrics adds up all of them.
        server.log.info("Prometheus metrics of every worker in %s", metrics.start_multiprocess_mode(_settings.data_dir))
    except OSError as exc:
        server.log.error("cannot prepare the metrics directory under DATA_DIR (%s): /metrics will count only the worker that answers", exc)
    if _settings.mode != "emulator" or _settings.sp_api_endpoint:
        return
    from emulator.process import start_emulator_process

    port = _free_port(_settings.emulator_port)
    _emulator = start_emulator_process(port, extra_args=["--exit-with-parent"])
    url = f"http://127.0.0.1:{port}"
    os.environ["SP_API_ENDPOINT"] = url
    server.log.info("No SP-API credentials set: serving from the bundled SP-API emulator at %s (mode=emulator)", url)


def post_worker_init(worker):
    """Start this worker's job runner: queued and interrupted jobs are picked up by whichever worker is free."""
    jobs = getattr(worker.wsgi, "extensions", {}).get("jobs")
    if jobs is None:
        return
    jobs.start()
    # On SIGTERM, start no new job step at once (worker_exit, which waits for the step in flight,
    # runs only once the requests in flight are done); then gunicorn's own graceful shutdown.
    graceful_exit = worker.handle_exit

    def handle_exit(signum, frame):
        jobs.request_stop()
        graceful_exit(signum, frame)

    signal.signal(signal.SIGTERM, handle_exit)


def worker_exit(server, worker):
    """Stop the job runner after its step in flight and let go of its job, so it resumes at once elsewhere."""
    jobs = getattr(worker.wsgi, "extensions", {}).get("jobs")
    if jobs is not None:
        jobs.stop()


def child_exit(server, worker):
    """A worker has exited: prometheus-client's bookkeeping for its metric files (its counts stay)."""
    metrics.worker_exited(worker.pid)


def on_exit(server):
    """Stop the emulator this master started; remove the metrics directory it made."""
    metrics.stop_multiprocess_mode(_settings.data_dir)
    if _emulator is not None:
        from emulator.process import stop_emulator_process

        stop_emulator_process(_emulator)
