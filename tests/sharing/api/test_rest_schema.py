"""OpenAPI 3 schema and Swagger UI: public, local assets only."""

from __future__ import annotations

import re

import yaml
from django.test import Client
from drf_spectacular.validation import validate_schema as validate

REST_PATHS = {
    "/api/v1/collections/",
    "/api/v1/collections/{collection_id}/submissions/",
    "/api/v1/collections/{collection_id}/export/stix/",
    "/api/v1/collections/{collection_id}/export/csv/",
    "/api/v1/collections/{collection_id}/export/ips.txt",
    "/api/v1/collections/{collection_id}/export/hashes.txt",
    "/api/v1/submissions/{submission_id}/",
    "/api/v1/objects/",
    "/api/v1/objects/{stix_id}/",
    "/api/v1/tokens/",
    "/api/v1/tokens/{prefix}/revoke/",
    "/api/v1/accounts/import/",
    "/api/v1/matches/",
    "/api/v1/match-states/",
    "/api/v1/match-states/{state_id}/release/",
    "/api/v1/alerts/",
    "/api/v1/alerts/{alert_id}/",
    "/api/v1/alerts/{alert_id}/decision/",
    "/api/v1/clusters/",
    "/api/v1/clusters/{cluster_id}/",
    "/api/v1/clusters/{cluster_id}/review/",
    "/api/v1/clusters/{cluster_id}/report/",
    "/api/v1/subscriptions/",
    "/api/v1/subscriptions/{subscription_id}/",
    "/api/v1/subscriptions/{subscription_id}/poll/",
    "/api/v1/feedback/",
    "/api/v1/feedback/reports/",
    "/api/v1/feedback/reports/{report_id}/",
    "/api/v1/feedback/reports/{report_id}/send/",
    "/api/v1/objects/{stix_id}/feedback/",
}


def test_schema_is_valid_openapi_3_yaml_without_a_token(db):
    response = Client().get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == REST_PATHS
    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["apiToken"]["description"],
    }


def test_schema_is_available_as_json(db):
    response = Client().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    ops = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "objects_list",
        "objects_retrieve",
        "submissions_create",
        "tokens_create",
        "tokens_revoke",
        "collections_export_ips",
    } <= ops
    params = {p["name"] for p in schema["paths"]["/api/v1/objects/"]["get"]["parameters"]}
    assert {
        "type",
        "created_by",
        "tlp",
        "label",
        "q",
        "state",
        "added_after",
        "added_before",
        "collection",
        "page_size",
        "cursor",
    } <= params


def test_docs_page_loads_assets_locally_not_from_a_cdn(db):
    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "/api/v1/schema/" in html
    external = re.findall(r"""(?:src|href)=["'](https?:)?//[^"']+""", html)
    assert external == []
    # Not a bare "cdn" substring: the page embeds a random CSRF token that may contain it.
    assert not re.search(r"cdn\.|jsdelivr|unpkg|cdnjs", html, re.IGNORECASE)


def test_schema_and_docs_ignore_a_bad_token(db):
    client = Client(HTTP_AUTHORIZATION="Bearer nonsense")
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/docs/").status_code == 200


def test_swagger_ui_assets_are_served_by_this_server(db):
    response = Client().get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert response.status_code == 200
