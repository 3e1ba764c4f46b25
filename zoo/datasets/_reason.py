"""Turns an exception into a short clause for a one-sentence error message."""


def short_reason(error, limit=120):
    """Returns `"<Type>: <message>"` on one line, cut to `limit` characters.

    Download failures explain themselves in long, nested messages; the zoo's
    errors quote the start of them in parentheses, so that the sentence
    stays readable and still says what went wrong.

    Args:
        error: the exception caught.
        limit: maximum length of the clause.

    Returns:
        A one-line string without a final period.

    Example:

    >>> short_reason(ConnectionError("Network is unreachable."))
    'ConnectionError: Network is unreachable'
    """
    text = " ".join(f"{type(error).__name__}: {error}".split()).rstrip(". ")
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
