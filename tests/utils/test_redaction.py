"""SecretFilter masks secrets in messages, arguments and tracebacks."""

from __future__ import annotations

import io
import logging

from utils.redaction import SecretFilter


def render(logger_call) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter(["amzn1.oa2-cs.v1.topsecret"]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        logger_call(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_known_secrets_and_lwa_tokens_are_masked():
    out = render(lambda log: log.warning("secret=%s access=%s refresh=%s", "amzn1.oa2-cs.v1.topsecret", "Atza|IwEBIabc-def", "Atzr|xyz"))
    assert "topsecret" not in out and "Atza|" not in out and "Atzr|" not in out
    assert out.count("[REDACTED]") == 3


def test_tracebacks_are_masked():
    def boom(log):
        try:
            raise RuntimeError("token Atza|IwEBIleak")
        except RuntimeError:
            log.exception("failed")

    out = render(boom)
    assert "RuntimeError" in out and "IwEBIleak" not in out


def test_plain_messages_are_untouched():
    assert render(lambda log: log.info("batch US: %d ASINs", 45)) == ""  # below WARNING on a fresh logger
    assert render(lambda log: log.warning("batch US: %d ASINs", 45)).strip() == "batch US: 45 ASINs"
