"""Run the browser app: `python app.py [--host H] [--port P]`.

Thin on purpose: the UI lives in mlsd_bot/web. Settings come from the
environment (MLSD_*, OPENAI_*); see README. The API key is never printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys

# Before gradio is imported anywhere: no usage analytics leave this machine.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
# gradio's queue keeps a record of the last 10,000 events and rebuilds a pandas summary of all
# of them after every event (for its monitoring page): CPU per call that grows with traffic, and
# memory that never comes back. We keep a few records and summarise rarely (operators may override).
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
# gradio tries `import matplotlib` before and after every event; a failed import is not cached,
# so without matplotlib each try searches sys.path again. Marked absent once, it fails at once.
if importlib.util.find_spec("matplotlib") is None:
    sys.modules["matplotlib"] = None

from mlsd_bot.cli import crash_line, quiet_streams
from mlsd_bot.config import load_settings
from mlsd_bot.errors import MlsdError

QUEUE_CONCURRENCY = 8  # events of one kind run in parallel, so one slow LLM reply does not block other users


def main(argv: list[str] | None = None) -> int:
    quiet_streams()
    try:
        settings = load_settings()
    except MlsdError as e:
        print(f"mlsd-bot: error: {e}", file=sys.stderr)
        return 1
    p = argparse.ArgumentParser(description="mlsd-bot in the browser")
    p.add_argument("--host", default=settings.host, help="interface to listen on (default: MLSD_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=settings.port, help="port (default: MLSD_PORT or 7860)")
    args = p.parse_args(argv)
    # Every failure is one line: damaged data files are MlsdErrors naming the file; a busy
    # port or an unwritable folder is an OSError; anything else is a bug, logged to a file.
    try:
        return serve(settings, args.host, args.port)
    except (MlsdError, OSError) as e:
        print(f"mlsd-bot: error: {' '.join(str(e).split())}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        print(crash_line(e, settings.data_dir), file=sys.stderr)
        return 70
    return 1


def serve(settings, host: str, port: int) -> int:
    from mlsd_bot.web.app import LAUNCH_OPTIONS, create_app
    from mlsd_bot.web.login import login_check

    _log_to_stderr()
    auth = login_check(settings)  # MLSD_USERS and/or MLSD_AUTH, throttled; None: no login page
    demo = create_app(settings)  # builds the knowledge index first when it is missing
    print(f"mlsd-bot: http://{host}:{port}  ({settings.voice_label()})", flush=True)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY)
    demo.launch(server_name=host, server_port=port, share=False, auth=auth, quiet=True, **LAUNCH_OPTIONS)
    return 0


def _log_to_stderr() -> None:
    """The app's own one-line log entries (e.g. a rejected message) go to stderr; other libraries stay quiet."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("mlsd-bot: %(message)s"))
    logger = logging.getLogger("mlsd_bot")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
