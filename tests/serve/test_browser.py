"""The web page in headless Chromium (Selenium): ask a question, see the answer highlighted; classify a text."""
from __future__ import annotations


import pytest
from _helpers import argmax_labels, needs_chromium

pytestmark = needs_chromium


@pytest.fixture()
def driver(chromium):
    return chromium


def test_ask_and_classify_on_the_page(live_server, driver, context, tmp_path, cls_model_dir):
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
    assert label == argmax_labels(cls_model_dir, ["What a wonderful film."])[0][0]

    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert severe == [], severe
    assert driver.save_screenshot(str(tmp_path / "page.png"))


def test_pair_classifier_on_the_page(driver, torch_backends, live_server_for, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from encoderlab.models import load_model
    from encoderlab.serve import create_app, load_backend

    out = tmp_path / "nli"
    r = load_model("scratch:bert-tiny", "classify", num_labels=2, id2label={0: "no", 1: "yes"},
                   label2id={"no": 0, "yes": 1}, seed=2)
    r.model.config.encoderlab = {"task": "classify", "max_seq_length": 48, "text_column": "premise",
                                 "text_pair_column": "hypothesis"}
    r.model.save_pretrained(str(out))
    r.tokenizer.save_pretrained(str(out))
    app = create_app([torch_backends[1], load_backend("nli", out)])
    wait = WebDriverWait(driver, 30)
    with live_server_for(app) as server:
        driver.get(server.url + "/")
        wait.until(lambda d: d.find_element(By.ID, "cls-section").is_displayed())
        assert not driver.find_element(By.ID, "pairs-block").is_displayed()     # single-text model first
        Select(driver.find_element(By.ID, "cls-model")).select_by_value("nli")
        assert driver.find_element(By.ID, "pairs-block").is_displayed()
        driver.find_element(By.ID, "texts").send_keys("A man plays a guitar.")
        driver.find_element(By.ID, "pairs").send_keys("Someone makes music.")
        driver.find_element(By.ID, "classify").click()
        wait.until(EC.visibility_of_element_located((By.ID, "cls-results")))
        cells = driver.find_elements(By.CSS_SELECTOR, "#cls-results td")
        assert cells[0].text == "A man plays a guitar. ‖ Someone makes music." and cells[1].text == argmax_labels(
            out, ["A man plays a guitar."], ["Someone makes music."])[0][0]
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert severe == [], severe


def test_api_docs_render_offline(live_server, driver):
    """Swagger UI at /docs comes from packaged files (fastapi-offline): it renders without a CDN."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(live_server.url + "/docs")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    paths = {e.text.replace("\u200b", "") for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/v1/answer", "/v1/classify", "/v1/models", "/healthz"} <= paths
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert severe == [], severe
