"""The one exception type mobilekit raises for bad user input."""


class MobilekitError(ValueError):
    """Bad input from the user: an argument, a file or a folder.

    The CLI turns it into a one-line message and exit code 2; everything else
    is a bug and keeps its traceback.
    """
