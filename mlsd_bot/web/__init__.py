"""The browser app: a gradio UI over the interview engine (issue #4).

Only this package imports gradio. `views` and `control` are plain Python (HTML
rendering and session bookkeeping, testable without a browser); `app` wires them
into a `gr.Blocks`. Run it with `python app.py` at the project root.
"""

from __future__ import annotations


def __getattr__(name: str):
    # Lazy, so `mlsd_bot.web.views` can be imported (and tested) without loading gradio.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
