"""The installable app, server side: versioned static URLs, /sw.js, the manifest, the offline page."""

from __future__ import annotations

import json
import re
import shutil

from companion.care.triage import RULES

from .conftest import sign_in
from .test_patient import open_link


def build_of(body: str) -> dict:
    first_line = body.split("\n", 1)[0]
    assert first_line.startswith("self.BUILD = ")
    return json.loads(first_line.removeprefix("self.BUILD = ").rstrip(";"))


def test_static_urls_carry_a_content_version_and_may_be_cached_for_a_year(client):
    page = client.get("/me/offline").get_data(as_text=True)
    css = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]{12})"', page)
    assert css, "the stylesheet is not versioned"
    response = client.get(css.group(1))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # Without the file's own version the URL may serve other content later: never cached for long.
    for other in ("/static/css/app.css", "/static/css/app.css?v=000000000000"):
        assert "immutable" not in client.get(other).headers.get("Cache-Control", "")


def test_static_files_do_not_vary_on_the_cookie_and_pages_do(client, make_clinic, make_visit):
    """A static file is the same for everyone: a browser reuses its copy whatever cookie it holds
    (the service worker's install, above all). A page varies on the session cookie, as before."""
    client.get(make_visit(make_clinic()).url)  # the patient cookie, and a session
    page = client.get("/me/check-in")
    assert "cookie" in page.headers["Vary"].lower()
    css = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]{12})"', page.get_data(as_text=True))
    response = client.get(css.group(1), headers={"Accept-Encoding": "br"})
    assert response.status_code == 200
    assert [v.strip().lower() for v in response.headers["Vary"].split(",")] == ["accept-encoding"]


def test_the_service_worker_is_served_at_the_root_with_its_precache_list(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    build = build_of(response.get_data(as_text=True))
    assert build["install_pages"] == ["/me/", "/me/check-in", "/me/offline"]
    assert build["pages"] == ["/me/", "/me/check-in", "/me/offline", "/me/check-ins"]
    assert build["offline"] == "/me/offline"
    assert all(re.search(r"\?v=[0-9a-f]{12}$", url) for url in build["assets"])
    assert any("/js/outbox.js" in url for url in build["assets"])
    for url in build["assets"]:
        assert client.get(url).status_code == 200, url
    # The outbox code is part of the worker itself: no importScripts round trip on install.
    assert "root.Outbox = " in response.get_data(as_text=True)
    assert "importScripts" not in response.get_data(as_text=True)


def test_static_text_is_compressed_but_pages_never_are(client, make_clinic, make_visit):
    accepts = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what chromium sends
    page = client.get("/me/offline", headers=accepts)
    css = re.search(r'href="(/static/css/app\.css\?v=\w+)"', page.get_data(as_text=True))
    for url in (css.group(1), "/sw.js"):
        encoding = client.get(url, headers=accepts).headers.get("Content-Encoding")
        assert encoding in {"zstd", "br", "gzip"}, url
    # Pages carry a CSRF token and health data: compressing them would invite BREACH.
    open_link(client, make_visit(make_clinic()))
    for path in ("/me/", "/me/check-in", "/me/offline"):
        assert "Content-Encoding" not in client.get(path, headers=accepts).headers, path


def test_the_release_changes_when_a_precached_file_changes(app, client, tmp_path, monkeypatch):
    before = build_of(client.get("/sw.js").get_data(as_text=True))["release"]
    static = tmp_path / "static"
    static.mkdir()
    shutil.copytree(app.static_folder, static, dirs_exist_ok=True)
    (static / "js" / "app.js").write_text("/* changed */", encoding="utf-8")
    monkeypatch.setattr(app, "static_folder", str(static))
    after = build_of(client.get("/sw.js").get_data(as_text=True))["release"]
    assert after != before


def test_the_manifest_makes_the_app_installable_in_the_patients_language(client):
    response = client.get("/manifest.webmanifest", headers={"Accept-Language": "es"})
    assert response.mimetype == "application/manifest+json"
    data = response.get_json(force=True)
    assert data["display"] == "standalone" and data["start_url"] == "/me/"
    assert data["scope"] == "/me/" and data["theme_color"].startswith("#")
    english = client.get("/manifest.webmanifest", headers={"Accept-Language": "en"})
    assert english.get_json(force=True)["name"] == "Aftercare companion"
    assert data["name"] and data["name"] != "Aftercare companion"
    purposes = {(i["sizes"], i.get("purpose", "any")) for i in data["icons"]}
    assert purposes == {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")}


def test_the_offline_page_needs_no_link_and_holds_no_health_data(client):
    response = client.get("/me/offline")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You are offline" in page and 'href="tel:112"' in page
    assert '"visit_id"' not in page


def test_the_checkin_page_carries_the_servers_own_triage_rules(client, make_clinic, make_visit):
    open_link(client, make_visit(make_clinic()))
    page = client.get("/me/check-in").get_data(as_text=True)
    raw = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', page, re.S)
    data = json.loads(raw.group(1))
    assert data["checkin"]["rules"] == json.loads(json.dumps(RULES))
    assert data["strings"]["saved"] == "Saved on this phone."
    assert data["timezone"] == "Europe/Madrid"


def test_therapist_pages_name_the_review_apps_own_manifest(client, make_clinic, make_therapist):
    sign_in_page = client.get("/sign-in").get_data(as_text=True)
    assert '<link rel="manifest" href="/review.webmanifest">' in sign_in_page
    sign_in(client, make_therapist(make_clinic()).email)
    queue = client.get("/").get_data(as_text=True)
    assert '<link rel="manifest" href="/review.webmanifest">' in queue
    assert "/manifest.webmanifest" not in queue  # not the patients' app

    data = client.get("/review.webmanifest", headers={"Accept-Language": "es"}).get_json(force=True)
    assert (data["id"], data["start_url"], data["scope"]) == ("/", "/", "/")
    assert data["display"] == "standalone" and data["name"] != "Aftercare review"
    english = client.get("/review.webmanifest").get_json(force=True)
    assert english["name"] == "Aftercare review" and english["short_name"] == "Review"
    # The patients' app keeps its narrower scope, so it never opens therapist pages.
    assert client.get("/manifest.webmanifest").get_json(force=True)["scope"] == "/me/"
