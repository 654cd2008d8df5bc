"""Turn an FBA Inbound Eligibility v1 `ItemEligibilityPreview` into the eligibility facts the API answers with."""

from __future__ import annotations

from typing import Any

INBOUND = "INBOUND"
_UNKNOWN = "UNKNOWN_INB_ERROR_CODE"

# A readable message per ineligibility reason code, shortened from the model's descriptions of
# ItemEligibilityPreview.ineligibilityReasonList (fbaInbound.json), which have the full text.
REASON_MESSAGES: dict[str, str] = {
    "FBA_INB_0004": "Missing package dimensions: provide the dimensions of the manufacturer's original packaging.",
    "FBA_INB_0006": "The SKU for this product is unknown or cannot be found.",
    "FBA_INB_0007": "Under dangerous goods (hazmat) review: add details to the listing (title, bullet points, description, image).",
    "FBA_INB_0008": "Under dangerous goods (hazmat) review: detailed battery information is needed (an exemption sheet).",
    "FBA_INB_0009": "Under dangerous goods (hazmat) review: a safety data sheet (SDS) is needed.",
    "FBA_INB_0010": "Under dangerous goods (hazmat) review: the dangerous goods information is mismatched; provide compliant documents.",
    "FBA_INB_0011": "Under dangerous goods (hazmat) review: the dangerous goods information is incomplete, inaccurate or conflicting.",
    "FBA_INB_0012": "Under dangerous goods (hazmat) review: the product information conflicts across detail pages or offers.",
    "FBA_INB_0013": "Under dangerous goods (hazmat) review: additional information is required to complete the review.",
    "FBA_INB_0014": "Under dangerous goods (hazmat) review: identified as possible dangerous goods (review takes 4-7 business days).",
    "FBA_INB_0015": "Dangerous goods (hazmat): regulated as unfulfillable and not eligible for sale with Amazon.",
    "FBA_INB_0016": "Dangerous goods (hazmat): a fulfillable dangerous good; the FBA dangerous goods program may be needed.",
    "FBA_INB_0017": "This product does not exist in the destination marketplace catalog.",
    "FBA_INB_0018": "Product missing category: it must have a category before it can be sent to Amazon.",
    "FBA_INB_0019": "This product must have a title before it can be sent to Amazon.",
    "FBA_INB_0034": "Product cannot be stickerless, commingled: create a new listing that requires product labels.",
    "FBA_INB_0035": "Expiration-dated or lot-controlled product needs to be labeled.",
    "FBA_INB_0036": "Expiration-dated or lot-controlled product needs to be commingled: it must be removed.",
    "FBA_INB_0037": "Not eligible for the fulfillment center: required tax documents are missing.",
    "FBA_INB_0038": "Parent ASIN cannot be fulfilled by Amazon: list against the child ASIN.",
    "FBA_INB_0050": "No fulfillment center in the destination country can receive this product.",
    "FBA_INB_0051": "This product has been blocked by FBA and cannot currently be sent to Amazon for fulfillment.",
    "FBA_INB_0053": "Not eligible in the destination marketplace: no required shipping option, or too large or too heavy.",
    "FBA_INB_0055": "Unfulfillable due to media region restrictions: its region code is restricted in this marketplace.",
    "FBA_INB_0056": "Ineligible for inbound: used non-media goods cannot be shipped to Amazon.",
    "FBA_INB_0059": "Unknown exception: this product must be removed at this time.",
    "FBA_INB_0065": "Product cannot be stickerless, commingled: create a new listing that requires product labels.",
    "FBA_INB_0066": "Unknown exception: this product must be removed at this time.",
    "FBA_INB_0067": "Ineligible for freight shipping with Amazon's Global Shipping Service.",
    "FBA_INB_0068": "Account not configured for expiration-dated or lot-controlled products.",
    "FBA_INB_0095": "The barcode (UPC/EAN/JAN/ISBN) is associated with more than one product: use product labels.",
    "FBA_INB_0097": "Fully regulated dangerous good.",
    "FBA_INB_0098": "Merchant is not authorized to send the item to the destination marketplace.",
    "FBA_INB_0099": "Seller account previously terminated.",
    "FBA_INB_0100": "The required tax information to send inventory to fulfillment centers in Mexico is missing.",
    "FBA_INB_0103": "An expiration-dated or lot-controlled product that cannot be handled at this time.",
    "FBA_INB_0104": "Item requires a manufacturer barcode: only new products can be stored without product labels.",
    "FBA_INB_0197": "Item requires safety and compliance documentation before FBA can fulfil its orders.",
    "FBA_INB_0342": "The manufacturer barcode of this offer has been removed from the ASIN: fix the product or use Amazon barcodes.",
    "FBA_INB_0465": "Not the brand representative in Amazon Brand Registry: the manufacturer barcode cannot be used.",
    _UNKNOWN: "Unknown ineligibility reason.",
}


# The dangerous goods (hazmat) reasons: under hazmat review (0007 to 0014), regulated (0015, 0016) and fully regulated (0097).
HAZMAT_CODES = frozenset({*(f"FBA_INB_{n:04d}" for n in range(7, 17)), "FBA_INB_0097"})


def is_hazmat(code: object) -> bool:
    """True for an ineligibility reason that is about dangerous goods."""
    return code in HAZMAT_CODES


def reason_message(code: str) -> str:
    """The readable message of an ineligibility reason code (a code the table lacks: the model's unknown reason)."""
    return REASON_MESSAGES.get(code) or f"{REASON_MESSAGES[_UNKNOWN]} ({code})"


def eligibility_facts(preview: dict[str, Any]) -> dict[str, Any]:
    """The program, whether the item is eligible for it, and why not: null where SP-API gave nothing."""
    eligible = preview.get("isEligibleForProgram")
    codes = [code for code in preview.get("ineligibilityReasonList") or [] if isinstance(code, str)]
    return {
        "program": preview.get("program"),
        "eligible": eligible if isinstance(eligible, bool) else None,
        "reasons": [{"code": code, "message": reason_message(code)} for code in codes],
    }
