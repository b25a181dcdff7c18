"""The web page in headless Chromium (Selenium): ask a question, see the answer highlighted; classify a text."""
from __future__ import annotations


import pytest
from _helpers import needs_chromium

pytestmark = needs_chromium


@pytest.fixture()
def driver(chromium):
    return chromium


def test_ask_and_classify_on_the_page(live_server, driver, context, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    driver.get(live_server.url + "/")
    wait.until(lambda d: d.find_element(By.ID, "qa-section").is_displayed())
    assert driver.find_element(By.ID, "qa-model").get_attribute("value") == "tiny"

    context_box = driver.find_element(By.ID, "context")
    context_box.clear()
    context_box.send_keys(context)
    driver.find_element(By.ID, "questions").send_keys("Who was Rollo?")
    top_k = driver.find_element(By.ID, "top-k")
    top_k.clear()
    top_k.send_keys("2")
    driver.find_element(By.ID, "ask").click()

    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#qa-results .answer")))
    answers = driver.find_elements(By.CSS_SELECTOR, "#qa-results .answer-text")
    assert len(answers) == 2 and all(a.text and a.text in context for a in answers)
    assert "%" in driver.find_element(By.CSS_SELECTOR, "#qa-results .conf").text
    marks = driver.find_elements(By.CSS_SELECTOR, "#highlighted mark")
    assert marks and marks[0].is_displayed()
    assert answers[0].text in driver.find_element(By.ID, "highlighted").text
    first = driver.find_element(By.CSS_SELECTOR, "#highlighted mark.rank-1").text
    assert first and first in answers[0].text          # the best answer is marked (maybe split by an overlap)
    assert driver.find_element(By.ID, "highlighted").text == context   # highlighting keeps the text intact

    driver.find_element(By.ID, "texts").send_keys("What a wonderful film.")
    driver.find_element(By.ID, "classify").click()
    wait.until(EC.visibility_of_element_located((By.ID, "cls-results")))
    label = driver.find_element(By.CSS_SELECTOR, "#cls-results td.label").text
    assert label in ("negative", "positive")

    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert severe == [], severe
    assert driver.save_screenshot(str(tmp_path / "page.png"))
