"""Batch jobs: lists of any size (JSON or CSV), answered in the background; status, results, cancel."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for

from routes import include_requested, job_service, json_object, refresh_requested, scanner
from routes.scan import scan_request
from services import errors
from services.entries import LookupEntry
from services.entry_csv import csv_rows, ndjson_lines
from services.errors import ServiceError
from services.jobs import Job, JobSpec
from services.scan import row_json
from services.scan_csv import scan_csv_rows, scan_xlsx
from services.scan_profile import PROFILE_KEYS
from utils.csv_io import CsvError, read_identifier_column
from utils.identifiers import InvalidIdentifier, normalize_identifier_type
from utils.marketplaces import UnknownCountry, resolve_country
from utils.supplier_list import SupplierList, SupplierListError, read_supplier_items, read_supplier_upload

bp = Blueprint("jobs", __name__)


_CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")
_XLSX_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)
_FORMATS = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv", "xlsx": _XLSX_TYPES[0]}


def _view(job: Job) -> dict[str, Any]:
    view = job_service().view(job)
    view["links"] = {
        "self": url_for("jobs.get_job", job_id=job.id),
        "results": url_for("jobs.get_results", job_id=job.id),
    }
    return view


def _job_or_404(job_id: str) -> Job:
    job = job_service().get(job_id)
    if job is None:
        raise ServiceError(errors.JOB_NOT_FOUND, f"No job {job_id!r}: it never existed, or it was purged after JOB_RETENTION")
    return job


def _identifier_type(raw: object) -> str:
    try:
        return normalize_identifier_type(raw)
    except InvalidIdentifier as exc:
        raise ServiceError(errors.INVALID_IDENTIFIER, str(exc)) from None


def _json_items(body: dict[str, Any]) -> tuple[str, list[str], bool, str, tuple[str, ...]]:
    """(identifier type, values, refresh, source, include) of a JSON job body."""
    has_asins, has_identifiers = "asins" in body, "identifiers" in body
    if has_asins == has_identifiers:
        raise ServiceError(
            errors.INVALID_REQUEST, 'Send either {"asins": [...]} or {"identifiers": [...], "identifier_type": "UPC"}, not both'
        )
    values = body["asins" if has_asins else "identifiers"]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ServiceError(errors.INVALID_REQUEST, "'asins' / 'identifiers' must be a list of strings")
    identifier_type = "ASIN" if has_asins else _identifier_type(body.get("identifier_type"))
    return identifier_type, values, refresh_requested(body), "json", include_requested(body)


def _upload_stream() -> tuple[Any, str]:
    """The uploaded file (multipart's 'file' field, else its first) or the body, as a stream, and its name."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file") or next(iter(request.files.values()), None)
        if upload is None:
            message = "The multipart upload has no file: send it as the 'file' field (curl -F file=@list.csv)"
            raise ServiceError(errors.INVALID_REQUEST, message)
        return upload.stream, upload.filename or "upload"
    if request.mimetype in _XLSX_TYPES:
        # A workbook is a zip, read from its end: spool the body to a file that can seek.
        spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)
        shutil.copyfileobj(request.stream, spool)
        spool.seek(0)
        return spool, "body"
    return request.stream, "body"


def _upload_items() -> tuple[str, Iterable[str], bool, str, tuple[str, ...]]:
    """(identifier type, values, refresh, source, include) of a CSV body or multipart upload, read as a stream; include from ?include=."""
    include = include_requested()
    request.max_content_length = current_app.config["SETTINGS"].max_upload_size
    stream, name = _upload_stream()
    try:
        column = read_identifier_column(stream)
    except CsvError as exc:
        raise ServiceError(errors.INVALID_CSV, str(exc)) from None
    identifier_type = column.identifier_type
    override = request.args.get("identifier_type")
    if override is not None:
        # ASIN too (a column the header or its values made look like codes); codes as for JSON jobs.
        identifier_type = "ASIN" if override.strip().upper() == "ASIN" else _identifier_type(override)
    source = f"csv:{name}" + (f" column {column.column}" if column.column else " (no header)")
    return identifier_type, column.values, refresh_requested(), source, include


# (identifier type, values, refresh, source, include, scan) of a job request.
JobRequest = tuple[str, Iterable[str], bool, str, tuple[str, ...], dict[str, Any] | None]


def _scan_job(supplier: SupplierList, profile_json: dict[str, Any], refresh: bool, source: str) -> JobRequest:
    scan = {"profile": profile_json, "columns": supplier.columns}
    return supplier.identifier_type, (row_json(row) for row in supplier.rows), refresh, source, (), scan


def _scan_json(body: dict[str, Any]) -> JobRequest:
    """A scan job of JSON `{"items": [...], "scan": {profile}}`."""
    items, profile, cost_column, pack_column = scan_request(body)
    try:
        supplier = read_supplier_items(items, cost_column=cost_column, pack_column=pack_column)
    except SupplierListError as exc:
        raise ServiceError(errors.INVALID_REQUEST, str(exc)) from None
    return _scan_job(supplier, profile.as_json(), refresh_requested(body), "json scan")


def _scan_upload() -> JobRequest:
    """A scan job of a CSV body, or a CSV or XLSX upload; the profile from the query string (?min_roi_percent=40 ...)."""
    request.max_content_length = current_app.config["SETTINGS"].max_upload_size
    overrides = {key: value for key, value in request.args.items() if key in PROFILE_KEYS}
    profile = scanner().defaults.with_overrides(overrides)
    stream, name = _upload_stream()
    try:
        supplier = read_supplier_upload(stream, cost_column=request.args.get("cost_column"), pack_column=request.args.get("pack_column"))
    except SupplierListError as exc:
        raise ServiceError(errors.INVALID_CSV, str(exc)) from None
    return _scan_job(supplier, profile.as_json(), refresh_requested(), f"scan:{name} column {supplier.identifier_column}")


def _scan_requested() -> bool:
    text = request.args.get("scan", "").strip().lower()
    if text not in ("", "true", "false", "1", "0"):
        raise ServiceError(errors.INVALID_REQUEST, "?scan= must be true or false")
    return text in ("true", "1")


@bp.post("/jobs/<country>")
def create_job(country: str) -> tuple[Response, int, dict[str, str]]:
    """Queue a job for a list of ASINs or identifiers, as JSON, a CSV body or a multipart CSV upload; 202 with its id."""
    try:
        code = resolve_country(country).code
    except UnknownCountry as exc:
        raise ServiceError(errors.INVALID_COUNTRY, str(exc)) from None
    scan: dict[str, Any] | None = None
    if request.is_json:
        body = json_object()
        if _scan_requested() or "items" in body or "scan" in body:
            identifier_type, values, refresh, source, include, scan = _scan_json(body)
        else:
            identifier_type, values, refresh, source, include = _json_items(body)
    elif request.mimetype in _CSV_TYPES or request.mimetype in _XLSX_TYPES or request.mimetype == "multipart/form-data":
        if _scan_requested():
            identifier_type, values, refresh, source, include, scan = _scan_upload()
        else:
            identifier_type, values, refresh, source, include = _upload_items()
    else:
        raise ServiceError(
            errors.UNSUPPORTED_MEDIA_TYPE, "Send the list as JSON (application/json), a CSV body (text/csv) or a multipart upload"
        )
    try:
        job = job_service().submit(JobSpec(code, identifier_type, refresh, source, include, scan), values)
    except (CsvError, SupplierListError) as exc:
        raise ServiceError(errors.INVALID_CSV, str(exc)) from None
    g.asin_count = job.total
    location = url_for("jobs.get_job", job_id=job.id)
    return jsonify(_view(job)), 202, {"Location": location}


@bp.get("/jobs")
def list_jobs() -> Response:
    """The most recent jobs, newest first (?limit=, default 50, at most 500)."""
    try:
        limit = int(request.args.get("limit", "50"))
    except ValueError:
        raise ServiceError(errors.INVALID_REQUEST, "?limit= must be a whole number") from None
    if not 1 <= limit <= 500:
        raise ServiceError(errors.INVALID_REQUEST, "?limit= must be between 1 and 500")
    return jsonify({"jobs": [_view(job) for job in job_service().list(limit)]})


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """A job's status, counts, progress, rate and estimated time left."""
    return jsonify(_view(_job_or_404(job_id)))


@bp.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> Response | tuple[Response, int]:
    """Cancel a queued or running job; what was answered stays available."""
    job = _job_or_404(job_id)
    if job.finished:
        raise ServiceError(errors.JOB_FINISHED, f"Job {job_id} is already {job.status}")
    return jsonify(_view(job_service().cancel(job_id) or job))


def _format() -> str:
    wanted = request.args.get("format", "").strip().lower()
    if wanted:
        if wanted not in _FORMATS:
            raise ServiceError(errors.INVALID_REQUEST, "?format= must be json, ndjson, csv or (for a scan) xlsx")
        return wanted
    best = request.accept_mimetypes.best_match([*_FORMATS.values(), "application/ndjson"], default="application/json")
    return {"text/csv": "csv", "application/x-ndjson": "ndjson", "application/ndjson": "ndjson"}.get(best or "", "json")


def _verdicts(job: Job) -> set[str]:
    """?verdict=BUY,REVIEW: the verdicts of the scan rows to answer (none: every row)."""
    text = request.args.get("verdict", "").strip()
    if not text:
        return set()
    if job.scan is None:
        raise ServiceError(errors.INVALID_REQUEST, f"?verdict= filters a scan's rows; job {job.id} is not a scan")
    wanted = {part.strip().upper() for part in text.split(",") if part.strip()}
    unknown = wanted - {"BUY", "REVIEW", "SKIP"}
    if unknown:
        raise ServiceError(errors.INVALID_REQUEST, f"?verdict= takes BUY, REVIEW and SKIP, not {', '.join(sorted(unknown))}")
    return wanted


def _chunks(spool: Any, size: int = 1 << 16) -> Iterator[bytes]:
    """A file's bytes a chunk at a time, closing it at the end."""
    with spool:
        while chunk := spool.read(size):
            yield chunk


def _json_document(head: dict[str, Any], entries: Iterator[LookupEntry]) -> Iterator[str]:
    """One JSON object, written as it streams: `head`'s fields, then the results array."""
    yield json.dumps(head, separators=(",", ":"))[:-1] + ',"results":['
    for index, entry in enumerate(entries):
        yield ("," if index else "") + json.dumps(entry, separators=(",", ":"))
    yield "]}"


@bp.get("/jobs/<job_id>/results")
def get_results(job_id: str) -> Response:
    """The answered items in input order (all of them once done) as JSON, NDJSON or CSV, streamed."""
    job = _job_or_404(job_id)
    fmt = _format()
    verdicts = _verdicts(job)
    answered: Iterable[tuple[int, str, LookupEntry]] = job_service().results(job_id)
    if verdicts:
        answered = (item for item in answered if (item[2].get("Scan") or {}).get("verdict") in verdicts)  # type: ignore[attr-defined]
    headers = {"X-Job-Status": job.status, "X-Job-Done": str(job.done), "X-Job-Total": str(job.total)}
    if fmt == "xlsx":
        if job.scan is None:
            raise ServiceError(errors.INVALID_REQUEST, f"?format=xlsx is for a scan's results; job {job_id} is not a scan: use csv")
        # A workbook is a zip: it is written whole (in a temporary file, not in memory), then sent.
        spool = tempfile.TemporaryFile()
        scan_xlsx(job.scan["columns"], (entry for _, _, entry in answered), spool)
        spool.seek(0)
        headers["Content-Disposition"] = f'attachment; filename="scan-{job_id}.xlsx"'
        return Response(_chunks(spool), mimetype=_FORMATS[fmt], headers=headers)
    if fmt == "csv" and job.scan is not None:
        headers["Content-Disposition"] = f'attachment; filename="scan-{job_id}.csv"'
        body: Iterator[str] = scan_csv_rows(job.scan["columns"], (entry for _, _, entry in answered))
    elif fmt == "csv":
        headers["Content-Disposition"] = f'attachment; filename="job-{job_id}.csv"'
        body = csv_rows(((value, entry) for _, value, entry in answered), include=job.include)
    elif fmt == "ndjson":
        body = ndjson_lines(entry for _, _, entry in answered)
    else:
        # The job's view is made here: the generator runs after the request context is gone.
        body = _json_document({"job": _view(job)}, (entry for _, _, entry in answered))
    return Response(body, mimetype=_FORMATS[fmt], headers=headers)
