"""What the rule modules raise when a rule says no."""


class Refusal(Exception):  # noqa: N818 - named for what it is: the rule's answer, not a failure
    """A rule refused, in the rule's own words (`EventFull`, `TransitionNotAllowed`…), with a message a
    person can read. Rule modules raise subclasses and never build an HTTP answer: each service's api.py
    answers every refusal in one function (see gather_shared.web.answer_refusals)."""
