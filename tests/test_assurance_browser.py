"""The HTML report in a real headless Chromium: charts render, the table sorts and filters, records
open, and the browser logs no errors. Needs Debian's ``chromium`` and ``chromium-driver``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from fhir_dnacpr.assurance import AuditConfig
from fhir_dnacpr.assurance.outputs import run_audit
from fhir_dnacpr.assurance.synthetic import scenario

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    config = AuditConfig(
        as_of=date(2023, 1, 1), generated_at=datetime(2023, 1, 2, tzinfo=UTC), max_findings_kept=40
    )
    run_audit(scenario(seed=7, background=2000).records, config, out)
    return out / "report.html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver are required (apt-get install -y chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager go looking for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1800",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def visible_bodies(driver) -> list:
    from selenium.webdriver.common.by import By

    return [b for b in driver.find_elements(By.CSS_SELECTOR, "#findings tbody.finding") if b.is_displayed()]


def column(driver, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        b.find_elements(By.CSS_SELECTOR, "tr.row td")[index].text.strip().lower()
        for b in visible_bodies(driver)
    ]


def test_report_in_headless_chromium(browser, report: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(report.as_uri())
    assert "DNACPR decision assurance report" in driver.title

    # charts: inline SVG with drawn bars
    charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) >= 2
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")) > 10
    assert charts[0].size["height"] > 100
    shots = [tmp_path / "report-top.png", tmp_path / "report-findings.png"]
    driver.save_screenshot(str(shots[0]))

    # sorting: click "Rule", then again for descending
    header = driver.find_element(By.CSS_SELECTOR, '#findings th[data-key="1"]')
    header.click()
    rules = column(driver, 1)
    assert rules == sorted(rules) and len(set(rules)) > 3
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert column(driver, 1) == sorted(rules, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"

    # filtering by severity, then by text
    total = len(visible_bodies(driver))
    Select(driver.find_element(By.ID, "filter-severity")).select_by_value("high")
    high = visible_bodies(driver)
    assert 0 < len(high) < total
    assert {b.get_attribute("data-severity") for b in high} == {"high"}
    assert driver.find_element(By.ID, "shown-count").text.startswith(f"{len(high)}")
    box = driver.find_element(By.ID, "filter-text")
    box.send_keys("blanket")
    [cluster] = visible_bodies(driver)
    assert cluster.get_attribute("data-rule") == "blanket-cluster"

    # drill-down: the cluster's six records
    drill = cluster.find_element(By.CSS_SELECTOR, "tr.drill")
    assert not drill.is_displayed()
    cluster.find_element(By.CSS_SELECTOR, "button.toggle").click()
    assert drill.is_displayed()
    assert len(drill.find_elements(By.CSS_SELECTOR, "table.evidence tbody tr")) == 6
    assert "pt-" in drill.text  # pseudonyms, not NHS numbers
    driver.execute_script("document.getElementById('findings-section').scrollIntoView()")
    driver.save_screenshot(str(shots[1]))

    # clearing the filters shows everything again
    box.clear()
    box.send_keys(" ")
    box.clear()
    Select(driver.find_element(By.ID, "filter-severity")).select_by_value("")
    assert len(visible_bodies(driver)) == total

    for shot in shots:
        assert shot.stat().st_size > 10_000
        if os.environ.get("FHIR_DNACPR_SCREENSHOT_DIR"):
            shutil.copy(shot, Path(os.environ["FHIR_DNACPR_SCREENSHOT_DIR"]) / f"assurance-{shot.name}")

    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
