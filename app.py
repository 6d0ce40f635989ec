"""Run the browser app: `python app.py [--host H] [--port P]`.

Thin on purpose: the UI lives in mlsd_bot/web. Settings come from the
environment (MLSD_*, OPENAI_*); see README. The API key is never printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

# Before gradio is imported anywhere: no usage analytics leave this machine.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from mlsd_bot.config import load_settings
from mlsd_bot.errors import MlsdError

QUEUE_CONCURRENCY = 8  # events of one kind run in parallel, so one slow LLM reply does not block other users


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
    except MlsdError as e:
        print(f"mlsd-bot: error: {e}", file=sys.stderr)
        return 1
    p = argparse.ArgumentParser(description="mlsd-bot in the browser")
    p.add_argument("--host", default=settings.host, help="interface to listen on (default: MLSD_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=settings.port, help="port (default: MLSD_PORT or 7860)")
    args = p.parse_args(argv)

    from mlsd_bot.web.app import LAUNCH_OPTIONS, create_app

    _log_to_stderr()

    try:
        demo = create_app(settings)  # builds the knowledge index first when it is missing
    except MlsdError as e:
        print(f"mlsd-bot: error: {e}", file=sys.stderr)
        return 1
    print(f"mlsd-bot: http://{args.host}:{args.port}  ({settings.voice_label()})", flush=True)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY)
    demo.launch(server_name=args.host, server_port=args.port, share=False, auth=settings.auth, quiet=True,
                **LAUNCH_OPTIONS)
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
