"""Look at a built HTML page the way a reader's browser shows it.

Debian's headless Chromium through Selenium and ``chromium-driver``,
offline (``SE_OFFLINE``: Selenium Manager looks for nothing): every
request of the page, the DOM once MathJax has typeset, a screenshot.
``python tests/browser.py page.html shot.png`` prints the report (JSON).
"""
import base64
import json
import os
import shutil
import sys
import time
from pathlib import Path
from unittest import mock

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
CHROMIUM_FLAGS = (
    'headless no-sandbox disable-gpu disable-quic no-first-run '
    'disable-background-networking disable-component-update disable-sync '
    'disable-default-apps disable-extensions mute-audio hide-scrollbars')

# Evaluated in the page once it has loaded: waits for MathJax and images.
SETTLE_JS = """
(async () => {
  if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
  const images = () => Array.from(document.images);
  for (let i = 0; i < 100 && !images().every(im => im.complete); i++)
    await new Promise(r => setTimeout(r, 50));
  return true;
})()
"""

# What the report says about the page, computed in the page.
INSPECT_JS = """
(() => {
  const main = document.querySelector('.page-content') || document.body;
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container')
       .forEach(e => e.remove());
  const text = clone.textContent;
  const math = Array.from(document.querySelectorAll('.math'));
  const scroller = document.querySelector('.mdl-layout__content');
  return {
    title: document.title,
    mathjax_version: window.MathJax && MathJax.version || null,
    math_elements: math.length,
    math_unrendered: math.filter(
        e => !e.querySelector('mjx-container')).length,
    mjx_containers: document.querySelectorAll('mjx-container').length,
    mjx_errors: document.querySelectorAll('mjx-merror').length,
    raw_tex: ['$$', '\\\\(', '\\\\)', '\\\\[', '\\\\]'].filter(
        s => text.includes(s)),
    raw_markup: ['``', '**', '$', ':cite', ':numref:', ':ref:', ':label:',
                 ':eqref:', ':eqlabel:', ':width:'].filter(
        s => text.includes(s)),
    images: Array.from(document.images).map(im => ({
        src: im.currentSrc || im.src, complete: im.complete,
        natural_width: im.naturalWidth})),
    copy_buttons: document.querySelectorAll('a.copybtn').length,
    code_cells: document.querySelectorAll(
        'div.highlight-default:not(.output) pre, div.highlight-bash pre, ' +
        'div.highlight-sh pre, div.highlight-python pre').length,
    height: Math.max(document.body.scrollHeight,
                     scroller ? scroller.scrollHeight : 0),
  };
})()
"""


def start_chromium():
    """A Selenium driver for headless Chromium that logs network events."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    for path, package in ((CHROMIUM, 'chromium'),
                          (CHROMEDRIVER, 'chromium-driver')):
        if not Path(path).exists():
            raise FileNotFoundError(f'{path} not found; install the Debian '
                                    f'package {package}')
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS.split():
        options.add_argument('--' + flag)
    options.set_capability('goog:loggingPrefs',
                           {'performance': 'ALL', 'browser': 'ALL'})
    with mock.patch.dict(os.environ, SE_OFFLINE='true'):
        return webdriver.Chrome(service=Service(CHROMEDRIVER),
                                options=options)


def _viewport(driver, width, height):
    driver.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {
        'width': width, 'height': height, 'deviceScaleFactor': 1,
        'mobile': False})


def _logged(driver):
    """Network events and browser errors Chromium logged for the page."""
    events = [json.loads(e['message'])['message']
              for e in driver.get_log('performance')]
    sent = [e['params'] for e in events
            if e['method'] == 'Network.requestWillBeSent']
    urls = {p['requestId']: p['request']['url'] for p in sent}
    severe = [e for e in driver.get_log('browser')
              if e['level'] == 'SEVERE']
    return {
        'requests': [p['request']['url'] for p in sent],
        'failed': [(urls.get(e['params']['requestId'], '?'),
                    e['params']['errorText'])
                   for e in events if e['method'] == 'Network.loadingFailed'],
        'exceptions': [e['message'] for e in severe
                       if e['source'] == 'javascript'],
        'console_errors': [e['message'] for e in severe
                           if e['source'] == 'console-api'],
    }


def inspect_page(html_file, screenshot=None, width=1280, max_height=12000):
    """Open ``html_file`` from disk; report what a reader would get: the
    DOM facts of ``INSPECT_JS`` and ``_logged``'s requests and errors."""
    url = Path(html_file).resolve().as_uri()
    driver = start_chromium()
    try:
        _viewport(driver, width, 900)
        driver.get(url)  # returns after the load event
        # execute_script waits for a returned promise to settle
        driver.execute_script('return ' + SETTLE_JS.strip())
        time.sleep(0.5)  # let late scripts (copy buttons) finish
        report = driver.execute_script('return ' + INSPECT_JS.strip())
        if screenshot:  # the whole page, at most max_height CSS pixels
            height = min(max_height, max(900, int(report['height'])))
            _viewport(driver, width, height)
            time.sleep(0.3)
            data = driver.execute_cdp_cmd('Page.captureScreenshot',
                                          {'format': 'png'})['data']
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            Path(screenshot).write_bytes(base64.b64decode(data))
        report.update(_logged(driver))
    finally:
        driver.quit()
    report['url'] = url
    return report


if __name__ == '__main__':
    print(json.dumps(inspect_page(*sys.argv[1:3]), indent=1))
