"""One exception type for every user-facing mistake, so the app can show its message as-is."""


class CamlabError(ValueError):
    """Bad input to camlab: the message says what was wrong and how to fix it."""
