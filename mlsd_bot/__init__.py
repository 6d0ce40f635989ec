"""mlsd-bot: a mock interviewer for machine-learning system design interviews.

The package is the engine (knowledge, retrieval, interviewer, report, sessions);
it never imports gradio. The browser UI lives in :mod:`mlsd_bot.web`, which
`app.py` builds and launches.
"""

__version__ = "0.1.0"
