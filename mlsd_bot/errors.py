"""The exceptions mlsd-bot raises on purpose.

Every message tells the user what to do next; the CLI and the UI show it as one
line (never a traceback). Messages never contain secrets such as API keys.
"""


class MlsdError(Exception):
    """Base class: a problem the user can fix."""


class ConfigError(MlsdError):
    """A setting (env var or flag) has a value we cannot use."""


class NoteError(MlsdError):
    """A knowledge note is malformed; names the file and the problem."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class IndexMissingError(MlsdError):
    """The vector store has not been built."""

    def __init__(self) -> None:
        super().__init__("No knowledge index found - build it with `mlsd-bot ingest`.")


class UnknownIdError(MlsdError):
    """A case, phase or signal id that the contract does not define."""

    def __init__(self, kind: str, value: str, known: list[str]):
        super().__init__(f"unknown {kind} {value!r}; choose one of: {', '.join(known)}")


class BadInputError(MlsdError):
    """An input file or message we cannot read."""


class ModelError(MlsdError):
    """The LLM provider failed (network, status, timeout or malformed reply)."""


class SessionNotFoundError(MlsdError):
    """No saved interview under that id."""

    def __init__(self, session_id: str):
        super().__init__(f"no saved interview {session_id!r} - list them with `mlsd-bot sessions`.")


class StoreError(MlsdError):
    """A data file (sessions database, knowledge index) cannot be used; names the file and what to do."""


class SessionBusyError(MlsdError):
    """A second message for an interview whose reply is still being written."""

    def __init__(self) -> None:
        super().__init__("The interviewer is still answering your last message - wait for the reply, then send again.")


class SessionStaleError(MlsdError):
    """This copy of an interview is behind the saved one: another app process went on with it."""

    def __init__(self) -> None:
        super().__init__("This interview went on in another window - reload the page (or resume it) to continue.")
