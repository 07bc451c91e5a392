"""The one exception type genmod raises for failures the user must act on."""


class GenmodError(Exception):
    """A build step failed; ``str(err)`` is the complete message for the user."""
