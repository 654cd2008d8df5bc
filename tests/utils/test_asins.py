"""ASIN normalisation and country resolution."""

from __future__ import annotations

import pytest

from utils.asins import InvalidAsin, normalize_asin
from utils.marketplaces import MARKETPLACES, UnknownCountry, resolve_country


@pytest.mark.parametrize("raw", ["B07N4M94X4", " b07n4m94x4 ", "0123456789"])
def test_asin_normalisation(raw):
    assert normalize_asin(raw) == raw.strip().upper()


@pytest.mark.parametrize("raw", ["", "B07N4M94X", "B07N4M94X45", "B07N4M94X!", None, 12345, "../../etc", "Ｂ07N4M94X4"])
def test_invalid_asins(raw):
    with pytest.raises(InvalidAsin):
        normalize_asin(raw)


@pytest.mark.parametrize(
    ("raw", "code", "marketplace_id"),
    [("us", "US", "ATVPDKIKX0DER"), ("UK", "GB", "A1F83G8C2ARO7P"), (" de ", "DE", "A1PA6795UKMFR9"), ("jp", "JP", "A1VC38T7YXB528")],
)
def test_countries_resolve_case_insensitively(raw, code, marketplace_id):
    marketplace = resolve_country(raw)
    assert (marketplace.code, marketplace.marketplace_id) == (code, marketplace_id)


def test_every_sp_api_marketplace_is_supported():
    expected = "US CA MX BR GB IE DE FR IT ES NL BE SE PL TR EG SA AE IN JP AU SG ZA".split()
    assert sorted(MARKETPLACES) == sorted(expected)
    assert {m.region for m in MARKETPLACES.values()} == {"NA", "EU", "FE"}


@pytest.mark.parametrize("raw", ["XX", "", None, "U S", "../US"])
def test_unknown_countries_name_the_supported_codes(raw):
    with pytest.raises(UnknownCountry) as caught:
        resolve_country(raw)
    assert "US" in str(caught.value) and "UK" in str(caught.value)


def test_only_ascii_is_upper_cased():
    with pytest.raises(InvalidAsin):
        normalize_asin("ßßßßß")  # "SSSSSSSSSS" once upper-cased
