"""Patient-page budgets: first-visit transfer, offline repeat visit, Lighthouse scores.

Runs the real stack (gunicorn, two workers, SQLite in a temp dir) and prints figures to compare
between commits. A benchmark, not a test, but it exits 1 when a budget fails.
Usage: .venv/bin/python bench/patient_pages.py [--runs N] [--skip-lighthouse] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
LIGHTHOUSE = ROOT / "bench" / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
# As in the e2e tests: Chromium's own background traffic must not pollute the counts.
FLAGS = "--headless --no-sandbox --disable-gpu --disable-background-networking"
FLAGS += " --disable-component-update --disable-sync --no-first-run --disable-quic"
PAGES = ("/me/", "/me/check-in")
MAX_BYTES, MAX_REQUESTS = 100 * 1024, 15  # 1 KB = 1024 bytes, as Lighthouse counts
MIN_SCORES = {"performance": 95, "accessibility": 100, "best-practices": 100}
METRICS = {"FCP": "first-contentful-paint", "LCP": "largest-contentful-paint"}
METRICS |= {"TBT": "total-blocking-time", "CLS": "cumulative-layout-shift"}
CDP_EVENTS = (
    "requestWillBeSent responseReceived requestServedFromCache loadingFinished loadingFailed"
)
REQUEST_LINE = re.compile(rb"^[A-Z]+ (\S+) HTTP/1\.[01]\r$", re.M)  # one per request sent
# "ready", "none" or "timeout". A page may register its worker on `load`, so give it a moment to
# appear; `ready` never settles without a registration, hence the bounded waits.
SW_READY_JS = """async () => {
  if (!('serviceWorker' in navigator)) return 'none';
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const sw = navigator.serviceWorker;
  for (let i = 0; i < 30 && !(await sw.getRegistration()); i++) await sleep(100);
  if (!(await sw.getRegistration())) return 'none';
  return Promise.race([sw.ready.then(() => 'ready'), sleep(10000).then(() => 'timeout')]);
}"""


@dataclass
class Row:
    """One request as the browser reports it (bytes: response headers and body received)."""

    url: str
    type: str
    source: str = "network"  # network | disk cache | memory cache | service worker | failed
    status: int = 0
    bytes: int = 0
    done: bool = False


class Wire:
    """A loopback relay in front of gunicorn counting the bytes really sent to the browser.

    Chromium under-reports some service-worker fetches (its own script, importScripts
    revalidations), so the transfer budget is judged here, on the wire, headers included.
    """

    def __init__(self, target: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port, self.target = self.listener.getsockname()[1], target
        self.lock = threading.Lock()
        self.reset()
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.down, self.paths = 0, []

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed at the end of the run
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(("127.0.0.1", self.target))
        except OSError:  # gunicorn not listening yet (health polling): just hang up
            client.close()
            return
        with client, server:
            up = threading.Thread(target=self._pump, args=(client, server, True), daemon=True)
            up.start()
            self._pump(server, client, False)
            up.join(timeout=5)

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                with self.lock:
                    if upstream:
                        self.paths += [p.decode() for p in REQUEST_LINE.findall(data)]
                    else:
                        self.down += len(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the other side went away; nothing more to count


def set_up_instance(env: dict[str, str], base: str) -> str:
    """Migrate a fresh database and seed the demo; return the patient link the demo prints."""
    for args in (["db", "upgrade"], ["demo", "--base-url", base]):
        cmd = [str(BIN / "flask"), "--app", "wsgi", *args]
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"`flask {' '.join(args)}` failed:\n{out.stderr}")
    found = re.search(r"Demo patient link.*?: (\S+/p/\S+)", out.stdout)
    if found is None:
        raise SystemExit(f"no patient link in `flask demo` output:\n{out.stdout}")
    return found.group(1)


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}"]
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [*cmd, "-w", "2", "wsgi:app"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


def wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    raise SystemExit(f"gunicorn not healthy within 30 s:\n{log.read_text()}")


def track_page(page: Any) -> dict[str, Row]:
    """Page requests via CDP: loadingFinished's encodedDataLength counts headers and body."""
    rows: dict[str, Row] = {}

    def on(method: str, e: dict[str, Any]) -> None:
        url = e.get("request", {}).get("url", "")
        if method == "requestWillBeSent" and not url.startswith(("data:", "blob:")):
            rows[e["requestId"]] = Row(url, e.get("type", "Other"))  # data:/blob: stay in the tab
        if (row := rows.get(e["requestId"])) is None:
            return
        if method == "responseReceived":
            row.status, resp = e["response"]["status"], e["response"]
            row.source = "service worker" if resp.get("fromServiceWorker") else row.source
            row.source = "disk cache" if resp.get("fromDiskCache") else row.source
        elif method == "requestServedFromCache":
            row.source = "memory cache"
        elif method in ("loadingFinished", "loadingFailed"):
            row.bytes, row.done = int(e.get("encodedDataLength", 0)), True
            row.source = "failed" if method == "loadingFailed" else row.source

    cdp = page.context.new_cdp_session(page)
    for method in CDP_EVENTS.split():
        cdp.on(f"Network.{method}", lambda e, m=method: on(m, e))
    cdp.send("Network.enable")
    return rows


def track_service_workers(context: Any) -> tuple[list[Any], set[Any]]:
    """Requests service workers make themselves (install, precache): all, and those in flight."""
    seen: list[Any] = []
    pending: set[Any] = set()

    def started(req: Any) -> None:
        if req.service_worker is not None:
            seen.append(req)
            pending.add(req)

    context.on("request", started)
    context.on("requestfinished", lambda req: pending.discard(req))
    context.on("requestfailed", lambda req: pending.discard(req))
    return seen, pending


def sw_row(req: Any) -> Row:
    resp = req.response() if req.failure is None else None
    if resp is None:
        return Row(req.url, f"{req.resource_type} (sw)", "failed", 0, 0, True)
    sizes = req.sizes()  # body size = encodedDataLength - headers: they add up to 0 from cache
    size = sizes["responseHeadersSize"] + sizes["responseBodySize"]
    source = "network" if size > 0 else "disk cache"
    return Row(req.url, f"{req.resource_type} (sw)", source, resp.status, max(size, 0), True)


def settle(page: Any, rows: dict[str, Row], sw_pending: set[Any]) -> None:
    """Wait (10 s at most) until nothing, page or worker, has been in flight for half a second."""
    quiet_since, deadline = time.monotonic(), time.monotonic() + 10
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.5:
        if sw_pending or any(not r.done for r in rows.values()):
            quiet_since = time.monotonic()
        page.wait_for_timeout(100)  # lets Playwright deliver pending events meanwhile


def check_offline(context: Any, page: Any, base: str) -> dict[str, str]:
    context.set_offline(True)
    result: dict[str, str] = {}
    for path in PAGES:
        try:
            resp = page.goto(base + path, timeout=10_000)
            h1 = (page.locator("h1:visible").first.text_content(timeout=2_000) or "").strip()
            result[path] = f"loaded (status {resp.status if resp else '?'}, visible h1 {h1!r})"
        except Exception as exc:  # offline failures surface as Playwright errors
            result[path] = f"FAILED ({str(exc).splitlines()[0]})"
    context.set_offline(False)
    return result


def first_visit(base: str, link: str, wire: Wire) -> tuple[dict[str, Any], str]:
    """Redeem the link in one context; load /me/check-in once in a new one holding the cookie."""
    os.environ["PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS"] = "1"  # older Playwright: opt in
    from playwright.sync_api import sync_playwright

    phone: Any = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS.split())
        try:
            redeemer = browser.new_context(**phone)
            redeemer.new_page().goto(link)
            cookies = redeemer.cookies()
            redeemer.close()
            context = browser.new_context(**phone)
            context.add_cookies(cookies)  # type: ignore[arg-type]
            sw_requests, sw_pending = track_service_workers(context)
            page = context.new_page()
            rows = track_page(page)
            wire.reset()
            page.goto(base + "/me/check-in", wait_until="load")
            sw_state = page.evaluate(SW_READY_JS)
            page.wait_for_load_state("networkidle")
            settle(page, rows, sw_pending)
            seen = list(rows.values()) + [sw_row(r) for r in sw_requests]
            with wire.lock:
                wire_bytes, wire_paths = wire.down, list(wire.paths)
            offline = check_offline(context, page, base) if sw_state == "ready" else None
            context.close()
        finally:
            browser.close()
    return {
        "requests": [asdict(r) | {"path": urlsplit(r.url).path} for r in seen],
        "count": len(seen),
        "browser_bytes": sum(r.bytes for r in seen),
        "bytes": wire_bytes,
        "wire_requests": wire_paths,
        "origins": sorted({urlsplit(r.url).netloc or urlsplit(r.url).scheme for r in seen}),
        "document_status": next((r.status for r in seen if r.url == base + "/me/check-in"), 0),
        "service_worker": sw_state,
        "offline": offline,
    }, "; ".join(f"{c['name']}={c['value']}" for c in cookies)


def lighthouse(url: str, headers: Path, out: Path, retries: int = 1) -> dict[str, Any]:
    cmd = [str(LIGHTHOUSE), url, "--output=json", f"--output-path={out}", "--quiet"]
    cmd += ["--only-categories=performance,accessibility,best-practices", "--form-factor=mobile"]
    cmd += [f"--chrome-flags={FLAGS}", f"--extra-headers={headers}"]
    out.unlink(missing_ok=True)
    # Own session, so a stuck run ends together with the Chromium it launched (this group only).
    proc = subprocess.Popen(cmd, env=os.environ | {"CHROME_PATH": CHROMIUM}, start_new_session=True)
    try:
        proc.wait(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    error = report.get("runtimeError", {}).get("code") or (proc.returncode and "EXIT")
    if error == "NO_NAVSTART" and retries:  # a trace hiccup; Lighthouse itself says "run again"
        print(f"  (Lighthouse NO_NAVSTART on {url}: running it again)")
        return lighthouse(url, headers, out, retries - 1)
    if error or not report:
        raise SystemExit(f"lighthouse failed on {url}: {error or proc.returncode}")
    return report


def failing(report: dict[str, Any], category: str) -> list[str]:
    """Audits scored below 1, each with what it points at, for developers to fix."""
    lines = []
    for ref in report["categories"][category]["auditRefs"]:
        audit = report["audits"][ref["id"]]
        if audit.get("score") is None or audit["score"] >= 1:
            continue  # passed, informative or not applicable
        items = ((audit.get("details") or {}).get("items") or [])[:3]
        where = [i.get("url") or (i.get("sourceLocation") or {}).get("url") for i in items]
        where += [(i.get("node") or {}).get("snippet") for i in items]
        detail = ", ".join(str(w) for w in where if w)
        lines.append(f"{ref['id']}: {audit['title']}" + (f" [{detail}]" if detail else ""))
    return lines


def run_lighthouse(base: str, cookie: str, runs: int, tmp: Path) -> dict[str, Any]:
    headers = tmp / "headers.json"
    headers.write_text(json.dumps({"Cookie": cookie}))
    results: dict[str, Any] = {}
    for path in PAGES:
        done = []
        for _ in range(runs):
            rep = lighthouse(base + path, headers, tmp / "lh.json")
            cats, audits = rep["categories"], rep["audits"]
            done.append(
                {
                    "scores": {c: round(cats[c]["score"] * 100) for c in MIN_SCORES},
                    "metrics": {k: audits[a]["numericValue"] for k, a in METRICS.items()},
                    "failing": {c: failing(rep, c) for c in ("accessibility", "best-practices")},
                }
            )
        median = {c: statistics.median(r["scores"][c] for r in done) for c in MIN_SCORES}
        # The run with the median performance score stands for the page in the detail lists.
        middle = sorted(done, key=lambda r: r["scores"]["performance"])[len(done) // 2]
        results[path] = {"median": median, "median_run": middle, "runs": done}
    return results


def report_transfer(t: dict[str, Any]) -> None:
    print("\nFirst visit of /me/check-in (fresh context, patient cookie, phone 390x844)")
    print(f"  {'path':<30} {'type':<18} {'source':<14} {'status':>6} {'bytes':>7}")
    for r in t["requests"]:
        cells = f"{r['path'][:30]:<30} {r['type'][:18]:<18} {r['source']:<14}"
        print(f"  {cells} {r['status']:>6} {r['bytes']:>7}")
    print(
        f"  requests made by the browser: {t['count']} (to the server: {len(t['wire_requests'])})"
    )
    print(f"  transferred on the wire: {t['bytes']} bytes = {t['bytes'] / 1024:.1f} KB", end="")
    print(f" (browser-reported: {t['browser_bytes'] / 1024:.1f} KB)")
    print(f"  origins: {', '.join(t['origins'])}   service worker: {t['service_worker']}")
    print("\nRepeat visit offline (same context, after the first visit)")
    state = t["service_worker"]
    skipped = "n/a (no service worker yet)" if state == "none" else f"n/a (service worker {state})"
    for path, outcome in (t["offline"] or dict.fromkeys(PAGES, skipped)).items():
        print(f"  {path:<14} {outcome}")


def report_lighthouse(lh: dict[str, Any], runs: int) -> None:
    print(f"\nLighthouse 12.8.2, mobile, simulated throttling (median of {runs} runs)")
    print(
        f"  {'page':<14} {'perf':>5} {'a11y':>5} {'bp':>5}   FCP / LCP / TBT ms, CLS (median run)"
    )
    for path, r in lh.items():
        m, x = r["median"], r["median_run"]["metrics"]
        scores = f"{m['performance']:>5} {m['accessibility']:>5} {m['best-practices']:>5}"
        print(
            f"  {path:<14} {scores}   {x['FCP']:.0f} / {x['LCP']:.0f} / {x['TBT']:.0f}, {x['CLS']:.3f}"
        )
    for path, r in lh.items():
        for cat, items in r["median_run"]["failing"].items():
            print(f"  {path} {cat} audits below 1: {'none' if not items else ''}")
            for item in items:
                print(f"    - {item}")


def budgets(t: dict[str, Any], lh: dict[str, Any] | None, host: str) -> dict[str, bool]:
    verdicts = {
        "/me/check-in answers 200": t["document_status"] == 200,
        f"transfer <= {MAX_BYTES // 1024} KB": t["bytes"] <= MAX_BYTES,
        f"requests <= {MAX_REQUESTS}": t["count"] <= MAX_REQUESTS,
        f"origins only {host}": t["origins"] == [host],
    }
    for path, r in (lh or {}).items():
        for cat, floor in MIN_SCORES.items():
            verdicts[f"{path} {cat} >= {floor}"] = r["median"][cat] >= floor
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page (3)")
    parser.add_argument("--skip-lighthouse", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if not args.skip_lighthouse and not LIGHTHOUSE.exists():
        raise SystemExit("Lighthouse is missing: npm ci --prefix bench")
    lh = None
    with tempfile.TemporaryDirectory(prefix="bench-") as tmpdir:
        tmp, port = Path(tmpdir), socket.create_server(("127.0.0.1", 0))
        with port:  # a free port for gunicorn, released just before it binds
            port_number = port.getsockname()[1]
        wire = Wire(port_number)
        host, base = f"127.0.0.1:{wire.port}", f"http://127.0.0.1:{wire.port}"
        env = os.environ | {"INSTANCE_PATH": tmpdir, "DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        link = set_up_instance(env, base)
        server = start_server(env, port_number, tmp / "gunicorn.log")
        try:
            wait_healthy(base, server, tmp / "gunicorn.log")
            transfer, cookie = first_visit(base, link, wire)
            report_transfer(transfer)
            if not args.skip_lighthouse:  # straight to gunicorn: the relay must not skew timings
                lh = run_lighthouse(f"http://127.0.0.1:{port_number}", cookie, args.runs, tmp)
                report_lighthouse(lh, args.runs)
        finally:
            server.terminate()  # gunicorn's master stops its workers on SIGTERM
            server.wait(timeout=30)
            wire.listener.close()
    verdicts = budgets(transfer, lh, host)
    print("\nBudgets")
    for name, ok in verdicts.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if args.json:
        figures = {"transfer": transfer, "lighthouse": lh, "budgets": verdicts}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
